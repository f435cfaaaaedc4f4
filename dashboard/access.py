"""Who may reach which view: every view needs a support role unless it says otherwise.

`RoleRequiredMiddleware` sits after Django's `LoginRequiredMiddleware`, so the
rule is deny by default: a new page needs the read permission, and answers
with `Cache-Control: no-store`, without a decorator anyone could forget. The
exceptions are views that already say who may use them:

- public views (`@login_not_required`): the login page, the webhook receiver
  (it checks a signature) and the sandbox (it checks an API key);
- Django admin's views (its `admin` namespace), which admit staff only and
  check model permissions themselves;
- the user's own account (`django.contrib.auth.views`, and the views made
  from theirs: log out, change the password), so that someone whose role was
  taken away can still leave.

Views that need more than reading (retry, bulk retry, cancel) check their own
permission and raise `RoleRequired`; `permission_denied` renders the refusal
and records it in the access audit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import ResolverMatch
from django.utils.cache import add_never_cache_headers

from . import audit
from .roles import READ_PERMISSION, VIEWER, RoleRequired

ACCOUNT_VIEWS = "django.contrib.auth.views"


def needs_role(match: ResolverMatch) -> bool:
    """Whether the view a URL resolved to shows what only a support role may read."""
    view = match.func
    public = not getattr(view, "login_required", True)
    return not (public or "admin" in match.app_names or _own_account(view))


def _own_account(view: Callable[..., object]) -> bool:
    if view.__module__ == ACCOUNT_VIEWS:
        return True
    view_class = getattr(view, "view_class", None)
    return view_class is not None and any(
        base.__module__ == ACCOUNT_VIEWS for base in view_class.__mro__
    )


class RoleRequiredMiddleware:
    """Refuse users without the read permission, and keep what they read out of caches.

    The permission is read on every request (`has_perm` caches per user object,
    and the user is loaded again for each request), so taking someone out of
    their support group takes effect on their next click.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = request.resolver_match
        if match is not None and needs_role(match):
            # Customer data (and the refusals around it) must not stay in a
            # browser's or a proxy's cache after the user has gone.
            add_never_cache_headers(response)
        return response

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[object, ...],
        view_kwargs: dict[str, object],
    ) -> None:
        match = request.resolver_match  # always set by now; refuse if it ever is not
        if (match is None or needs_role(match)) and not request.user.has_perm(READ_PERMISSION):
            raise RoleRequired(VIEWER, "see sync data")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 403 page: what the user lacks and whom to ask, inside the site's layout.

    Only a `RoleRequired` explains itself; any other refusal (the admin's, a
    bare `PermissionDenied`) gets a general sentence, so that no message
    written for a log ever reaches the page. Every refusal is recorded: who,
    which page, and the role lacking when the refusal names one.
    """
    audit.denied(request, exception)
    context = {
        "refusal": exception if isinstance(exception, RoleRequired) else None,
        "contact": settings.SUPPORT_ACCESS_CONTACT,
        "export_cap": settings.CSV_EXPORT_MAX_ROWS,
    }
    response = render(request, "403.html", context, status=403)
    add_never_cache_headers(response)
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused by the CSRF check (`CSRF_FAILURE_VIEW`): nothing changed, and why.

    Django's own page is bare and speaks to developers; `reason` is for the
    log, not the person.
    """
    response = render(request, "403_csrf.html", status=403)
    add_never_cache_headers(response)
    return response
