"""Sign-in with a username and password (this app's login and the admin's)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser, User


class LocalPasswordBackend(ModelBackend):
    """Django's own password check; with single sign-on on, for admins only.

    Once a team signs in through its identity provider, that is where people
    join and leave: a support agent's password here would outlive their
    account there. Admins (staff or superusers) keep their passwords so that
    someone can still get in, and fix the configuration, when the identity
    provider is down or misconfigured.
    """

    def user_can_authenticate(self, user: User | AnonymousUser | None) -> bool:
        if not super().user_can_authenticate(user):
            return False
        if settings.OIDC_ENABLED:
            return bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
        return True
