"""Pages of the Sync Health dashboard (every one needs a login)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def home(request: HttpRequest) -> HttpResponse:
    # Until the Sync Health pages exist, the logged-in landing page is the
    # admin, where the sandbox's estate, settings and webhook consumers live.
    return redirect("admin:index")
