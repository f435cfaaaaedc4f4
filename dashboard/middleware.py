"""Show times in each user's chosen zone (UTC unless they asked for local time), and the pages
in their chosen colours (`request.theme`, which _base.html puts on <html data-theme>)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from .models import Theme
from .preferences import display

# Where a session keeps its user's zone: read from the preference once a
# session, not once a page. The preferences page updates it at once; a change
# made elsewhere (the admin) applies from the user's next login.
ZONE_SESSION_KEY = "sync_health_time_zone"
# The same for the user's theme, read with the zone.
THEME_SESSION_KEY = "sync_health_theme"


def forget_zone(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """On login (`user_logged_in`): read the zone again, even when the same user logs in
    again on a session that kept it (`login` keeps the data of such a session)."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(ZONE_SESSION_KEY, None)
        session.pop(THEME_SESSION_KEY, None)


class UserTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone, theme = "UTC", Theme.SYSTEM.value
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            session = request.session
            kept_zone, kept_theme = session.get(ZONE_SESSION_KEY), session.get(THEME_SESSION_KEY)
            if isinstance(kept_zone, str) and isinstance(kept_theme, str):
                zone, theme = kept_zone, kept_theme
            else:
                zone, theme = display(user.pk)
                if isinstance(kept_zone, str):
                    zone = kept_zone
                session[ZONE_SESSION_KEY], session[THEME_SESSION_KEY] = zone, theme
        request.theme = theme if theme in Theme.values else Theme.SYSTEM.value  # type: ignore[attr-defined]
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))
        request.time_zone_name = zone  # type: ignore[attr-defined]
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
