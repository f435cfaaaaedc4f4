"""Pages of a bulk retry: open its preview, review and confirm it, follow and cancel it.

Opening the preview (GET, with the history's filter) freezes the candidate
syncs as a draft seen only by its author and sends them to its review page;
the draft enqueues nothing, so it is a snapshot, not a change of state. A
problem's page opens one (POST, its button's token) for the problem's
outstanding items; it is reviewed and confirmed on the same pages. Every
change — leaving syncs out, confirming, cancelling — is a POST with a CSRF
token and the bulk-retry permission, checked here on the server.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from . import bulk_retry
from .bulk_retry import BulkRefused, CountMismatch
from .filters import PAGE_PARAMS, SyncFilter
from .forms import BulkReviewForm, SyncFilterForm
from .models import BulkMember, BulkRetry, Company, Problem, group_key
from .problems import retries
from .retry_views import RETRY_PERMISSION
from .roles import LEAD, RoleRequired
from .vocabulary import BulkState

log = logging.getLogger(__name__)

BULK_PERMISSION = "dashboard.bulk_retry"
# The preview: groups per page, members shown under each, members per page of one group.
GROUPS_PER_PAGE = 50
SAMPLES_PER_GROUP = 10
MEMBERS_PER_PAGE = 100
# The report: members per page, and requests named as still running long.
REPORT_PER_PAGE = 100
RUNNING_LONG_SHOWN = 50


def _user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdecimal() and len(raw) < 7 else 1


@require_GET
def bulk_open(request: HttpRequest) -> HttpResponse:
    """Freeze the filter's candidates, read in the user's zone, and show them for review."""
    if not request.user.has_perm(BULK_PERMISSION):
        raise RoleRequired(LEAD, "retry in bulk")
    query = request.GET.copy()
    for name in PAGE_PARAMS:  # the history's place in its pages selects nothing
        query.pop(name, None)
    scope = query.urlencode()
    form = SyncFilterForm(query)
    if not form.is_valid():
        return render(
            request, "dashboard/bulk_open.html", {"form": form, "scope": scope}, status=400
        )
    filters = form.filters()
    zone = timezone.get_current_timezone_name()
    try:
        bulk = bulk_retry.open_draft(
            user=_user(request),
            filters=filters,
            scope=scope[:5000],
            time_zone=zone,
            description=_describe(filters, zone),
            limit=settings.BULK_RETRY_MAX_SYNCS,
        )
    except BulkRefused as exc:
        return render(
            request,
            "dashboard/bulk_open.html",
            {"form": form, "scope": scope, "refused": str(exc)},
            status=400,
        )
    if bulk is None:
        return render(
            request,
            "dashboard/bulk_open.html",
            {"form": form, "scope": scope, "description": _describe(filters, zone)},
        )
    return HttpResponseRedirect(reverse("bulk-review", args=[bulk.pk]))


@require_POST
def problem_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Freeze a problem's outstanding items as a draft and show it for review.

    The button's form carries a token: posted twice (a double click), it opens
    the one preview. Nothing is requested until the preview is confirmed.
    """
    problem = get_object_or_404(Problem, pk=pk)
    if not request.user.has_perm(BULK_PERMISSION):
        BulkRetry.objects.create(
            key=uuid.uuid4(), user=_user(request), state=BulkState.DENIED, scope="",
            problem=problem, description=f"Denied: no permission to retry in bulk "
            f"({bulk_retry.describe(problem)}).",
        )  # fmt: skip
        raise RoleRequired(
            LEAD,
            "retry a problem's outstanding items",
            advice="You can retry the items of one sync at a time from the sync's page."
            if request.user.has_perm(RETRY_PERMISSION)
            else "",
        )
    context: dict[str, object] = {
        "problem": problem,
        "problem_url": retries.page_url(problem),
        "description": bulk_retry.describe(problem),
    }
    key = _token(request.POST.get("key"))
    if key is None:
        context["refused"] = "The form was incomplete: reload the problem's page and try again."
        return render(request, "dashboard/bulk_open.html", context, status=400)
    try:
        bulk = bulk_retry.open_problem_draft(
            user=_user(request), problem=problem, key=key, limit=settings.BULK_RETRY_MAX_SYNCS
        )
    except BulkRefused as exc:
        context["refused"] = str(exc)
        return render(request, "dashboard/bulk_open.html", context, status=409)
    if bulk is None:
        return render(request, "dashboard/bulk_open.html", context)
    return HttpResponseRedirect(reverse("bulk-review", args=[bulk.pk]))


def _token(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def _describe(filters: SyncFilter, zone: str) -> str:
    label = filters.span.label
    if filters.preset == "custom":
        label += f" ({zone} time)"
    parts = [label]
    if filters.codes:
        parts.append("status " + ", ".join(str(c) for c in filters.codes))
    if filters.category is not None:
        parts.append(filters.category.key.replace("_", " "))
    if filters.platform:
        parts.append(filters.platform)
    if filters.company:
        company = Company.objects.filter(company_id=filters.company).first()
        parts.append(f"company {company.name if company else filters.company}")
    if filters.fingerprint:
        parts.append("one error group")
    if filters.problem is not None:
        parts.append(f"problem #{filters.problem}")
    if filters.q:
        parts.append(f"matching “{filters.q}”")
    return "; ".join(parts)


@dataclass(frozen=True)
class ReviewPlace:
    """Where the person is in a preview: one group's members, or a page of groups."""

    group: tuple[int, str] | None = None
    page: int = 1

    @classmethod
    def read(cls, data: QueryDict) -> ReviewPlace:
        group = bulk_retry.parse_group_key(data.get("group", ""))
        return cls(group=group, page=_page_number(data.get("page")))

    @property
    def query(self) -> str:
        query = QueryDict(mutable=True)
        if self.group is not None:
            query["group"] = group_key(*self.group)
        if self.page > 1:
            query["page"] = str(self.page)
        return query.urlencode()


@require_http_methods(["GET", "POST"])
def bulk_review(request: HttpRequest, pk: int) -> HttpResponse:
    """A draft's syncs, grouped, to leave some out and confirm the rest."""
    if not request.user.has_perm(BULK_PERMISSION):
        if request.method == "POST":
            BulkRetry.objects.create(
                key=uuid.uuid4(), user=_user(request), state=BulkState.DENIED, scope="",
                description=f"Denied: no permission to retry in bulk (preview {pk}).",
            )  # fmt: skip
        raise RoleRequired(LEAD, "retry in bulk")
    bulk = get_object_or_404(BulkRetry, pk=pk)
    if bulk.state != BulkState.DRAFT:
        return HttpResponseRedirect(reverse("bulk-detail", args=[bulk.pk]))
    if bulk.user_id != request.user.pk:
        # A draft is its author's alone: nobody else sees it, or confirms it.
        raise Http404("No such bulk retry.")
    place = ReviewPlace.read(request.POST if request.method == "POST" else request.GET)
    if request.method == "GET":
        return _render_review(request, bulk, place)
    form = BulkReviewForm(request.POST)
    if not form.is_valid():
        return _render_review(request, bulk, place, form, status=400)
    data = form.cleaned_data
    if data["key"] != bulk.key:
        form.add_error(None, "This form belongs to another preview: reload the page.")
        return _render_review(request, bulk, place, form, status=400)
    group, include = _group_action(request.POST)
    try:
        bulk_retry.choose(
            bulk.pk, shown=data["shown"], kept=data["keep"], group=group, include_group=include
        )
        if "confirm" in request.POST:
            confirmed, _ = bulk_retry.confirm(
                bulk.pk,
                expected=data["expected"],
                typed=data["typed"],
                threshold=settings.BULK_RETRY_CONFIRM_THRESHOLD,
            )
            return HttpResponseRedirect(reverse("bulk-detail", args=[confirmed.pk]))
    except BulkRefused as exc:
        if not BulkRetry.objects.filter(pk=bulk.pk, state=BulkState.DRAFT).exists():
            # Confirmed meanwhile (a double-submitted form): show that bulk retry.
            return HttpResponseRedirect(reverse("bulk-detail", args=[bulk.pk]))
        form.add_error("typed" if isinstance(exc, CountMismatch) else None, str(exc))
        return _render_review(request, bulk, place, form, status=400)
    messages.success(request, "Your choices are saved.")
    url = reverse("bulk-review", args=[bulk.pk])
    return HttpResponseRedirect(f"{url}?{place.query}" if place.query else url)


def _group_action(post: QueryDict) -> tuple[tuple[int, str] | None, bool]:
    """The group a "leave out all" or "keep all" button names, if one was pressed."""
    for name, include in (("leave_group", False), ("keep_group", True)):
        group = bulk_retry.parse_group_key(post.get(name, ""))
        if group is not None:
            return group, include
    return None, True


def _render_review(
    request: HttpRequest,
    bulk: BulkRetry,
    place: ReviewPlace,
    form: BulkReviewForm | None = None,
    status: int = 200,
) -> HttpResponse:
    totals = bulk_retry.kept_totals(bulk)
    groups = bulk_retry.groups(bulk)
    threshold = settings.BULK_RETRY_CONFIRM_THRESHOLD
    context: dict[str, object] = {
        "bulk": bulk,
        "totals": totals,
        "left_out": sum(g.left_out for g in groups),
        "group_count": len(groups),
        "form": form,
        "typed": form.data.get("typed", "") if form is not None else "",
        "needs_typing": totals.syncs > threshold,
        "threshold": threshold,
        "place": place,
    }
    if bulk.problem is not None:
        context |= {
            "problem_url": retries.page_url(bulk.problem),
            "along": bulk_retry.along(bulk),
            "named": bulk_retry.named_count(bulk),
        }
    if place.group is not None:
        key = group_key(*place.group)
        chosen = next((g for g in groups if g.key == key), None)
        if chosen is None:
            raise Http404("That group is not part of this preview.")
        members = Paginator(bulk_retry.group_members(bulk, *place.group), MEMBERS_PER_PAGE)
        member_page = members.get_page(place.page)
        context |= {"group": chosen, "page": member_page, "members": list(member_page.object_list)}
    else:
        page = Paginator(groups, GROUPS_PER_PAGE).get_page(place.page)
        shown = list(page.object_list)
        samples = bulk_retry.samples(bulk, shown, SAMPLES_PER_GROUP)
        context |= {
            "page": page,
            "sections": [(g, samples.get(g.key, [])) for g in shown],
            "per_group": SAMPLES_PER_GROUP,
        }
    return render(request, "dashboard/bulk_review.html", context, status=status)


@require_GET
@vary_on_headers("HX-Request")
def bulk_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The report: progress, item outcomes summed, and each member sync with its request."""
    bulk = get_object_or_404(
        BulkRetry.objects.select_related("user", "cancelled_by", "problem"), pk=pk
    )
    if bulk.state == BulkState.DRAFT:
        if bulk.user_id != request.user.pk:
            raise Http404("No such bulk retry.")
        return HttpResponseRedirect(reverse("bulk-review", args=[bulk.pk]))
    figures = bulk_retry.report(bulk)
    finished = bulk_retry.is_finished(bulk, figures)
    long, long_count = bulk_retry.running_long(bulk, limit=RUNNING_LONG_SHOWN)
    members = (
        BulkMember.objects.filter(bulk=bulk, included=True)
        .select_related("sync", "company", "request")
        .order_by("pk")
    )
    page = Paginator(members, REPORT_PER_PAGE).get_page(_page_number(request.GET.get("page")))
    context = {
        "bulk": bulk,
        "report": figures,
        "finished": finished,
        "percent": int(figures.settled * 100 / max(figures.planned, 1)),
        "running_long": long,
        "running_long_count": long_count,
        "page": page,
        "rows": bulk_retry.member_rows(
            page.object_list, cancelled=bulk.state == BulkState.CANCELLED
        ),
        "can_cancel": request.user.has_perm(BULK_PERMISSION) and bulk_retry.can_cancel(bulk),
        "problem_url": retries.page_url(bulk.problem) if bulk.problem is not None else "",
    }
    htmx = getattr(request, "htmx", None)
    if htmx and request.GET.get("poll"):
        response = render(request, "dashboard/bulk_detail.html#bulk-progress", context)
        if finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "dashboard/bulk_detail.html", context)


@require_POST
def bulk_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a running bulk retry: what was not yet sent is skipped, and counted."""
    if not request.user.has_perm(BULK_PERMISSION):
        log.warning("bulk retry %s: cancel refused to %s (no permission)", pk, request.user)
        raise RoleRequired(LEAD, "cancel a bulk retry")
    bulk = get_object_or_404(BulkRetry, pk=pk)
    if bulk.state == BulkState.DRAFT and bulk.user_id != request.user.pk:
        raise Http404("No such bulk retry.")
    try:
        outcome = bulk_retry.cancel(bulk.pk, user=_user(request))
    except BulkRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Bulk retry cancelled: {outcome.not_requested:,} sync(s) not requested and "
            f"{outcome.requests_skipped:,} queued request(s) skipped. Requests already taken "
            "by a worker go on.",
        )
    return HttpResponseRedirect(reverse("bulk-detail", args=[bulk.pk]))
