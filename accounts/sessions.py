"""Sessions that end: after a spell without activity, and a fixed time after signing in.

A support agent leaves the dashboard open on a sync that refreshes itself;
those background refreshes (htmx regions that poll, always with `poll=1`)
are not the agent's activity, so they neither count nor keep the session
alive. Page views, searches and clicks do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect

SIGNED_IN_AT = "accounts_signed_in_at"
LAST_ACTIVITY = "accounts_last_activity"


def is_background_poll(request: HttpRequest) -> bool:
    """A region refreshing itself (`hx-get="…?poll=1"` with `hx-trigger="every …"`)."""
    return bool(getattr(request, "htmx", False)) and bool(request.GET.get("poll"))


def start_session(sender: object, request: HttpRequest | None = None, **kwargs: object) -> None:
    """On sign-in (`user_logged_in`): both clocks start now."""
    session = getattr(request, "session", None)
    if session is not None:
        session[SIGNED_IN_AT] = session[LAST_ACTIVITY] = int(time.time())


def ending(session: SessionBase, now: int) -> str | None:
    """Why this session is over at `now`, or None while it lasts."""
    signed_in_at = session.get(SIGNED_IN_AT)
    last_activity = session.get(LAST_ACTIVITY)
    max_age_hours = settings.SESSION_MAX_AGE_HOURS
    idle_minutes = settings.SESSION_IDLE_TIMEOUT_MINUTES
    if isinstance(signed_in_at, int) and now - signed_in_at >= max_age_hours * 3600:
        return (
            f"You were signed out {max_age_hours} hour{'s' if max_age_hours != 1 else ''} "
            "after signing in. Please log in again."
        )
    if isinstance(last_activity, int) and now - last_activity >= idle_minutes * 60:
        return (
            f"You were signed out after {idle_minutes} minute{'s' if idle_minutes != 1 else ''} "
            "without activity."
        )
    return None


class SessionTimeoutMiddleware:
    """Ends sessions that were idle too long or began too long ago.

    The person lands on the login page with a message saying why, and comes
    back to the page they were on; a background poll that finds its session
    over takes the whole page there, not just its region.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        now = int(time.time())
        reason = ending(request.session, now)
        if reason is not None:
            logout(request)
            messages.info(request, reason)
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(_login_url(request))
            # The login-required middleware sends the request to the login page.
            return self.get_response(request)
        session = request.session
        if SIGNED_IN_AT not in session:  # signed in before these clocks existed
            session[SIGNED_IN_AT] = now
        if not is_background_poll(request) and _activity_is_news(session.get(LAST_ACTIVITY), now):
            session[LAST_ACTIVITY] = now
        return self.get_response(request)


def _activity_is_news(last_activity: object, now: int) -> bool:
    """Whether to write the time down: at most every tenth of the idle timeout (and at most
    once a minute), so page views do not each cost a session write."""
    if not isinstance(last_activity, int):
        return True
    resolution = min(60, settings.SESSION_IDLE_TIMEOUT_MINUTES * 6)
    return now - last_activity >= resolution


def _login_url(request: HttpRequest) -> str:
    back_to = request.htmx.current_url_abs_path or "/"  # type: ignore[attr-defined]
    return f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back_to})}"
