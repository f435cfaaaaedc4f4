"""Pages that ask for a retry, show it running, and list every one ever made.

They record a request and enqueue a task; they never call the upstream.
State changes need POST, a CSRF token (middleware) and a permission, checked
here on the server whatever the page showed.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from . import retry
from .forms import AuditFilterForm
from .models import RetryRequest, Sync
from .roles import LEAD, RUNNER, VIEWER, RoleRequired
from .vocabulary import ACTIVE_RETRY_STATES

RETRY_PERMISSION = "dashboard.retry_sync"
CANCEL_PERMISSION = "dashboard.cancel_retry"


def _key(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


@require_http_methods(["GET", "POST"])
def sync_retry(request: HttpRequest, sync_id: str) -> HttpResponse:
    sync = get_object_or_404(Sync.objects.select_related("company"), sync_id=sync_id)
    if not request.user.has_perm(RETRY_PERMISSION):
        if request.method == "POST":
            retry.record_denied(sync=sync, user=request.user, reason="No permission to retry.")
        raise RoleRequired(RUNNER, "retry a sync")
    if request.method == "GET":
        return render(request, "dashboard/retry_confirm.html", _confirm_context(sync))
    key = _key(request.POST.get("key"))
    if key is None:
        messages.error(request, "The retry form was incomplete; please try again.")
        return HttpResponseRedirect(reverse("sync-retry", args=[sync.sync_id]))
    try:
        made, created = retry.request_retry(sync=sync, user=request.user, key=key)  # type: ignore[arg-type]
    except retry.RetryRefused as exc:
        messages.error(request, str(exc))
        context = _confirm_context(sync, active=None, refused=str(exc))
        return render(request, "dashboard/retry_confirm.html", context, status=409)
    if created:
        messages.success(request, f"Retry of {made.item_count} outstanding item(s) queued.")
    else:
        messages.info(request, "This sync is already being retried; here is that request.")
    return HttpResponseRedirect(reverse("retry-detail", args=[made.pk]))


def _confirm_context(sync: Sync, **extra: object) -> dict[str, object]:
    """The confirmation page: the plan as it stands (a POST plans again, under its lock)."""
    planned = retry.plan(sync)
    context: dict[str, object] = {
        "sync": sync,
        "plan": planned,
        "named_elsewhere": [s for s in planned.sync_ids if s != str(sync.sync_id)],
        "resolution": retry.resolution(sync),
        "active": RetryRequest.objects.filter(sync=sync, state__in=ACTIVE_RETRY_STATES).first(),
        "key": uuid.uuid4(),
    }
    context.update(extra)
    return context


def _load(pk: int) -> RetryRequest:
    return get_object_or_404(
        RetryRequest.objects.select_related("sync", "company", "user", "bulk", "cancelled_by"),
        pk=pk,
    )


def _detail_context(made: RetryRequest) -> dict[str, object]:
    new_sync = Sync.objects.filter(sync_id=made.new_sync_id).first() if made.new_sync_id else None
    return {"req": made, "outcomes": retry.outcomes(made), "new_sync": new_sync}


@require_GET
@vary_on_headers("HX-Request")
def retry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    made = _load(pk)
    context = _detail_context(made)
    htmx = getattr(request, "htmx", None)
    if htmx and request.GET.get("poll"):
        response = render(request, "dashboard/retry_detail.html#retry-progress", context)
        if not made.is_active:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "dashboard/retry_detail.html", context)


@require_POST
def retry_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel a request before its POST is sent; once it may have gone, say so (409)."""
    made = get_object_or_404(RetryRequest, pk=pk)
    if not request.user.has_perm(CANCEL_PERMISSION):
        raise RoleRequired(LEAD, "cancel a retry")
    user = request.user
    assert isinstance(user, User)
    if retry.cancel(pk=made.pk, user=user):
        messages.success(request, "Retry cancelled: nothing was sent to the upstream.")
        return HttpResponseRedirect(reverse("retry-detail", args=[made.pk]))
    current = _load(made.pk)
    if current.posted_at is not None:
        refusal = "Too late to cancel: this retry has already been sent to the upstream."
    else:
        refusal = f"This retry can no longer be cancelled: it is {current.get_state_display()}."
    messages.error(request, refusal)
    return render(request, "dashboard/retry_detail.html", _detail_context(current), status=409)


@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("dashboard.view_retryrequest"):
        raise RoleRequired(VIEWER, "see the retries")
    form = AuditFilterForm(request.GET or None)
    rows = RetryRequest.objects.select_related("user", "sync", "company", "bulk").order_by(
        "-created_at", "-pk"
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data.get("user"):
            rows = rows.filter(user__username=data["user"])
        if data.get("company"):
            rows = rows.filter(company__company_id=data["company"])
        if data.get("state"):
            rows = rows.filter(state=data["state"])
        if data.get("start"):
            rows = rows.filter(created_at__date__gte=data["start"])
        if data.get("end"):
            rows = rows.filter(created_at__date__lte=data["end"])
    elif form.is_bound:
        rows = rows.none()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/audit.html",
        {"form": form, "page": page, "query": query.urlencode()},
        status=400 if form.is_bound and form.errors else 200,
    )


def users_with_requests() -> list[str]:
    ids = RetryRequest.objects.values_list("user_id", flat=True).distinct()[:500]
    return list(User.objects.filter(pk__in=ids).values_list("username", flat=True))
