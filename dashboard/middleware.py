"""Show times in each user's chosen zone (UTC unless they asked for local time)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .preferences import active_zone

# Where a session keeps its user's zone: read from the preference once a
# session, not once a page. The preferences page updates it at once; a change
# made elsewhere (the admin) applies from the user's next login.
ZONE_SESSION_KEY = "sync_health_time_zone"


def forget_zone(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """On login (`user_logged_in`): read the zone again, even when the same user logs in
    again on a session that kept it (`login` keeps the data of such a session)."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(ZONE_SESSION_KEY, None)


class UserTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = "UTC"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            kept = request.session.get(ZONE_SESSION_KEY)
            if isinstance(kept, str):
                zone = kept
            else:
                zone = request.session[ZONE_SESSION_KEY] = active_zone(user.pk)
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))
        request.time_zone_name = zone  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
