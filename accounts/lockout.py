"""The page a locked-out sign-in gets, on the app's login and the admin's alike."""

from __future__ import annotations

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

# "Too Many Requests": the sign-in was refused for its count, not its password.
LOCKED_OUT_STATUS = 429


def locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, object] | None = None,
) -> HttpResponse:
    """`AXES_LOCKOUT_CALLABLE`: replaces the login page's answer while the lockout lasts.

    Each refused attempt starts the cool-off again (axes' default), so the
    wait the page names is exactly the wait from now.
    """
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    # Back to the form that was posted (the app's login or the admin's); a
    # single sign-on callback has no form of its own to go back to.
    if request.method == "POST":
        try_again_url = request.get_full_path()
    else:
        try_again_url = resolve_url(settings.LOGIN_URL)
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes, "try_again_url": try_again_url},
        status=LOCKED_OUT_STATUS,
    )
