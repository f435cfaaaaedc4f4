"""Pages that ask for a retry, show it running, and list every one ever made.

They record a request and enqueue a task; they never call the upstream.
State changes need POST, a CSRF token (middleware) and a permission, checked
here on the server whatever the page showed.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from . import retry, selectors
from .filters import SyncFilter
from .forms import AuditFilterForm, SyncFilterForm
from .models import BulkRetry, Company, RetryRequest, Sync
from .vocabulary import ACTIVE_RETRY_STATES, SETTLED_BULK_STATES, BulkState, RetryState

RETRY_PERMISSION = "dashboard.retry_sync"
BULK_PERMISSION = "dashboard.bulk_retry"
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
        raise PermissionDenied("You may not retry syncs.")
    failed = retry.failed_item_ids(sync)
    active = RetryRequest.objects.filter(sync=sync, state__in=ACTIVE_RETRY_STATES).first()
    if request.method == "GET":
        return render(
            request,
            "dashboard/retry_confirm.html",
            {"sync": sync, "failed": failed, "active": active, "key": uuid.uuid4()},
        )
    key = _key(request.POST.get("key"))
    if key is None:
        messages.error(request, "The retry form was incomplete; please try again.")
        return HttpResponseRedirect(reverse("sync-retry", args=[sync.sync_id]))
    try:
        made, created = retry.request_retry(sync=sync, user=request.user, key=key)  # type: ignore[arg-type]
    except retry.RetryRefused as exc:
        messages.error(request, str(exc))
        return render(
            request,
            "dashboard/retry_confirm.html",
            {
                "sync": sync,
                "failed": failed,
                "active": None,
                "key": uuid.uuid4(),
                "refused": str(exc),
            },
            status=409,
        )
    if created:
        messages.success(request, f"Retry of {made.item_count} failed item(s) queued.")
    else:
        messages.info(request, "This sync is already being retried; here is that request.")
    return HttpResponseRedirect(reverse("retry-detail", args=[made.pk]))


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
        raise PermissionDenied("You may not cancel retries.")
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
        raise PermissionDenied
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
        request, "dashboard/audit.html", {"form": form, "page": page, "query": query.urlencode()}
    )


def _scope_form(scope: str) -> SyncFilterForm:
    form = SyncFilterForm(QueryDict(scope))
    form.is_valid()
    return form


@require_http_methods(["GET", "POST"])
def bulk_retry(request: HttpRequest) -> HttpResponse:
    """Preview (GET) and confirm (POST) a retry of every failed sync in a filter."""
    scope = request.GET.urlencode() if request.method == "GET" else request.POST.get("scope", "")
    if not request.user.has_perm(BULK_PERMISSION):
        if request.method == "POST":
            BulkRetry.objects.create(
                key=uuid.uuid4(), user=request.user, scope=scope[:5000], state=BulkState.DENIED,  # type: ignore[misc]
                description="Denied: no permission to retry in bulk.",
            )  # fmt: skip
        raise PermissionDenied("You may not retry in bulk.")
    form = _scope_form(scope)
    if form.errors:
        return render(
            request, "dashboard/bulk_confirm.html", {"form": form, "scope": scope}, status=400
        )
    filters = form.filters()
    syncs = selectors.filtered_syncs(filters)
    preview = retry.bulk_preview(syncs)
    description = _describe(filters)
    if request.method == "GET":
        return render(
            request,
            "dashboard/bulk_confirm.html",
            {
                "form": form,
                "scope": scope,
                "preview": preview,
                "key": uuid.uuid4(),
                "description": description,
            },
        )
    key = _key(request.POST.get("key"))
    if key is None or not preview["syncs"]:
        messages.error(
            request, "Nothing to retry in this selection." if key else "The form was incomplete."
        )
        return HttpResponseRedirect(reverse("sync-history") + "?" + scope)
    user = request.user
    assert isinstance(user, User)
    bulk, _ = retry.start_bulk(
        user=user, key=key, scope=scope, description=description, preview=preview
    )
    return HttpResponseRedirect(reverse("bulk-detail", args=[bulk.pk]))


def _describe(filters: SyncFilter) -> str:
    parts = [filters.span.label]
    if filters.codes:
        parts.append("status " + ", ".join(str(c) for c in filters.codes))
    if filters.category is not None:
        parts.append(filters.category.key.replace("_", " "))
    if filters.platform:
        parts.append(filters.platform)
    if filters.company:
        company = Company.objects.filter(company_id=filters.company).first()
        parts.append(f"company {company.name if company else filters.company}")
    if filters.q:
        parts.append(f"matching “{filters.q}”")
    return "; ".join(parts)


@require_GET
@vary_on_headers("HX-Request")
def bulk_detail(request: HttpRequest, pk: int) -> HttpResponse:
    bulk = get_object_or_404(BulkRetry.objects.select_related("user"), pk=pk)
    report = retry.bulk_report(bulk)
    done = report["total"] - report["active"]
    planned = max(bulk.planned_syncs, report["total"], 1)
    finished = bulk.state in SETTLED_BULK_STATES and report["active"] == 0
    context = {
        "bulk": bulk,
        "report": report,
        "done": done,
        "percent": int(done * 100 / planned),
        "finished": finished,
        "failures": RetryRequest.objects.filter(bulk=bulk, state=RetryState.FAILED).select_related(
            "sync", "company"
        )[:50],
    }
    htmx = getattr(request, "htmx", None)
    if htmx and request.GET.get("poll"):
        response = render(request, "dashboard/bulk_detail.html#bulk-progress", context)
        if finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "dashboard/bulk_detail.html", context)


def users_with_requests() -> list[str]:
    ids = RetryRequest.objects.values_list("user_id", flat=True).distinct()[:500]
    return list(User.objects.filter(pk__in=ids).values_list("username", flat=True))
