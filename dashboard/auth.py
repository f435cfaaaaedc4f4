"""The authentication backend: Django's, with each request's user read with their preferences."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class UserWithPreferenceBackend(ModelBackend):
    """`ModelBackend`, except that the session's user comes with their time preference.

    Every page shows times in the user's chosen zone, so reading the
    preference in the same query as the user saves a query per request.
    """

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        user = (
            model._default_manager.select_related("sync_health_preference")
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
