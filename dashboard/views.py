"""Pages of the Sync Health dashboard. They only read.

Every one needs a login and a support role (`dashboard.access`, one
middleware for all of them) and answers with `Cache-Control: no-store`.

Filters live in the URL (shareable; the back button works). htmx requests
get the page's swappable region as a partial of the same template.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from . import (
    audit,
    chart,
    health_signals,
    history_links,
    live,
    retry,
    saved_view_views,
    saved_views,
    search,
    selectors,
    sync_config,
)
from . import preferences as user_preferences
from .filters import PAGE_PARAMS, PRESETS, SyncFilter, encode_cursor, short_id
from .forms import ItemFilterForm, PreferenceForm, SyncFilterForm, ThemeForm, code_choices
from .middleware import THEME_SESSION_KEY, ZONE_SESSION_KEY
from .models import Sync
from .problems import rows as problem_rows
from .problems import selectors as problem_selectors
from .roles import EXPORT_BEYOND_CAP_PERMISSION, LEAD, VIEWER, RoleRequired
from .vocabulary import (
    FAILED_ITEM_STATUSES,
    STATUS_CODES,
    Category,
    ItemFilter,
    ItemStatus,
    ViewPage,
    note_for,
)

ITEMS_PER_PAGE = 50


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _filter_form(request: HttpRequest) -> SyncFilterForm:
    # Always bound (an empty query is a valid filter), so the form is built once.
    form = SyncFilterForm(request.GET)
    form.is_valid()
    return form


def _query_without(request: HttpRequest, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def _all_time_query(request: HttpRequest) -> str:
    """The same filters and search over all time (from the first page)."""
    params = request.GET.copy()
    for name in ("start", "end", *PAGE_PARAMS):
        params.pop(name, None)
    params["range"] = "all"
    return params.urlencode()


def _filters(form: SyncFilterForm) -> SyncFilter | None:
    """The form's filter, or None when the form has errors (the page shows them)."""
    return None if form.errors else form.filters()


def _status(request: HttpRequest, form: SyncFilterForm) -> int:
    """400 for a page whose filters are not valid, the page showing why.

    Except an htmx request's answer: htmx drops an error's body instead of
    swapping it in, and the message is the answer's whole point.
    """
    if not form.errors or getattr(request, "htmx", False):
        return 200
    return 400


def _base_context(request: HttpRequest, form: SyncFilterForm) -> dict[str, Any]:
    return {
        "form": form,
        "filters": _filters(form),
        "presets": PRESETS,
        "span": form.date_range(),
        "categories": Category,
        "status_codes": STATUS_CODES,
        "code_groups": code_choices(),
    }


def last_visit(request: HttpRequest, *, mark: bool) -> datetime | None:
    """When the user opened the dashboard or the history before this visit; `mark`: this
    request is a visit (the Problems page's mechanism, with a field of its own)."""
    user_id = request.user.pk
    assert user_id is not None  # LoginRequiredMiddleware
    return user_preferences.last_look(request.session, user_id, user_preferences.SYNCS, mark=mark)


def summary_links(request: HttpRequest, filters: SyncFilter | None) -> dict[str, str]:
    """What the summary's cards add to their links to the history: its range and platform."""
    platform = filters.platform if filters else ""
    return {
        "range_query": _query_without(
            request, "code", "category", "failed_items", "sort", "dir", *PAGE_PARAMS
        ),
        "platform_query": "&" + urlencode({"platform": platform}) if platform else "",
    }


@require_GET
@vary_on_headers("HX-Request")
def summary(request: HttpRequest) -> HttpResponse:
    shelf = saved_view_views.shelf(request, ViewPage.SUMMARY)
    if shelf.redirect is not None:
        return shelf.redirect
    form = _filter_form(request)
    context = _base_context(request, form)
    context["shelf"] = shelf
    filters = context["filters"]
    result = selectors.summary(filters) if filters else selectors.Summary()
    context["summary"] = result
    context.update(summary_links(request, filters))
    span = context["span"]
    context["chart"] = chart.build(result.buckets, result.bucket_unit, span.start, span.end)
    platform = filters.platform if filters else ""
    context["top_problems"] = problem_selectors.top(platform)
    context["problem_query"] = "?" + urlencode({"platform": platform}) if platform else ""
    context["own_health"] = health_signals.overview()
    since = last_visit(request, mark=True)
    context["arrived"] = live.arrived_since(since) if since else None
    context["live_query"] = request.GET.urlencode()
    context["poll"] = live.poll_seconds()
    return render(request, "dashboard/summary.html", context, status=_status(request, form))


@require_GET
@vary_on_headers("HX-Request")
def history(request: HtmxHttpRequest) -> HttpResponse:
    shelf = saved_view_views.shelf(request, ViewPage.HISTORY)
    if shelf.redirect is not None:
        return shelf.redirect
    form = _filter_form(request)
    context = _base_context(request, form)
    context["shelf"] = shelf
    filters = context["filters"]
    position = form.cleaned_data.get("pos") if filters else None
    page = selectors.history_page(filters, position=position) if filters else None
    ids = filters.id_range if filters else None
    if filters:
        cleaned = form.cleaned_data
        context["chips"] = history_links.chips(
            request.GET,
            filters,
            cleaned,
            company_name=selectors.company_name(filters.company) if filters.company else None,
            fingerprint_cause=selectors.fingerprint_cause(filters.fingerprint)
            if filters.fingerprint
            else None,
            problem=form.problem_shown,
        )
        context["sort_headers"] = history_links.sort_headers(request.GET, filters)
    if page:
        context["pages"] = history_links.page_links(request.GET, page, selectors.PAGE_SIZE)
    # The live bar counts what is newer than the top row: only on the newest page.
    first_page = not any(request.GET.get(name) for name in ("after", "before", "page"))
    context.update(
        {
            "page": page,
            "since": last_visit(request, mark=True),
            "new_syncs_query": _new_syncs_query(request, filters, page) if first_page else None,
            "poll": live.poll_seconds(),
            "matches": search.matches(ids) if ids else None,
            "match_cap": search.MATCH_CAP,
            "short_id": bool(filters and short_id(filters.q)),
            "all_time_query": _all_time_query(request),
            # The export and the bulk retry record their filters: not the view's name.
            "export_query": _query_without(request, *PAGE_PARAMS, saved_views.VIEW_PARAM),
            "export_cap": settings.CSV_EXPORT_MAX_ROWS,
            "is_first_page": first_page,
        }
    )
    template = "dashboard/history.html"
    if request.htmx and not request.htmx.boosted:
        template += "#history-results"
    return render(request, template, context, status=_status(request, form))


def _new_syncs_query(
    request: HttpRequest, filters: SyncFilter | None, page: selectors.HistoryPage | None
) -> str | None:
    """What the first page, newest first, asks to count the syncs above its top row; None
    for any other page or order (new syncs would not show at its top)."""
    if filters is None or page is None or filters.sort != "time" or not filters.descending:
        return None
    params = request.GET.copy()
    params.pop("after", None)
    if page.rows:
        top = page.rows[0]
        params["newest"] = encode_cursor(top.sync_utc.isoformat(), top.pk)
    return params.urlencode()


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@require_GET
def history_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    form = _filter_form(request)
    filters = _filters(form)
    if filters is None:
        return HttpResponse(
            "Invalid filter: " + "; ".join(str(e) for errs in form.errors.values() for e in errs),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    rows = selectors.export_rows(filters)
    _check_export_cap(request, rows)
    event = audit.export_started(request, query=_query_without(request, *PAGE_PARAMS))
    writer = csv.writer(_Echo())
    header = [
        "sync_id", "company_id", "company", "platform", "status_code", "status", "category",
        "sync_utc", "completed_utc", "duration_s", "items", "items_completed", "items_failed",
        "items_outstanding", "resolved_utc", "resolved_by", "retry_of", "data_pushed",
        "error_message", "cause", "problem_id",
    ]  # fmt: skip

    def lines() -> Iterator[str]:
        # Counted as they go out, and recorded however the stream ends:
        # complete, cut short by the client, or broken by an error.
        streamed, finished = 0, False
        try:
            yield writer.writerow(header)
            for sync, cause in _with_causes(rows):
                streamed += 1
                yield writer.writerow(_csv_values(sync, cause))
            finished = True
        finally:
            audit.export_ended(event, rows=streamed, finished=finished)

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sync-history-{stamp}.csv"'
    return response


def _check_export_cap(request: HttpRequest, rows: QuerySet[Sync]) -> None:
    """Above `CSV_EXPORT_MAX_ROWS` syncs, only a Support lead may export.

    Counted up to one past the cap, never the whole selection: the answer
    is only "within the cap or not".
    """
    if request.user.has_perm(EXPORT_BEYOND_CAP_PERMISSION):
        return
    cap = settings.CSV_EXPORT_MAX_ROWS
    if rows.order_by().values("pk")[: cap + 1].count() > cap:
        raise RoleRequired(
            LEAD,
            f"export more than {cap:,} syncs at once",
            advice=f"This selection holds more than {cap:,} syncs. Narrow the filters (a "
            "shorter date range, a status code, a company) to export it in parts.",
        )


# Syncs whose causes are read at once (two queries a batch).
CAUSE_BATCH = 500


def _with_causes(rows: QuerySet[Sync]) -> Iterator[tuple[Sync, problem_rows.Cause]]:
    """Each sync with its cause, read a batch of syncs at a time."""
    batch: list[Sync] = []
    for sync in rows.iterator(chunk_size=2000):
        batch.append(sync)
        if len(batch) == CAUSE_BATCH:
            yield from _caused(batch)
            batch = []
    yield from _caused(batch)


def _caused(batch: list[Sync]) -> Iterator[tuple[Sync, problem_rows.Cause]]:
    causes = problem_rows.causes(batch) if batch else {}
    for sync in batch:
        yield sync, causes.get(sync.pk, problem_rows.NO_CAUSE)


def _csv_values(sync: Sync, cause: problem_rows.Cause) -> list[Any]:
    """One sync's CSV row, in the header's order."""
    values = (
        str(sync.sync_id),
        str(sync.company.company_id),
        sync.company.name,
        sync.platform_name,
        sync.status_code,
        sync.status_label,
        Category(sync.category).label,
        sync.sync_utc.isoformat(),
        sync.completed_at.isoformat() if sync.completed_at else "",
        "" if sync.duration_s is None else sync.duration_s,
        sync.items_total,
        sync.items_completed,
        sync.items_failed,
        # A retry's outstanding items are its original's (one chain, one count).
        "" if sync.retry_of_id else sync.items_outstanding,
        sync.resolved_at.isoformat() if sync.resolved_at else "",
        str(sync.resolved_by.sync_id) if sync.resolved_by else "",
        str(sync.retry_of.sync_id) if sync.retry_of else "",
        "yes" if sync.data_pushed else "no",
        sync.error_message,
        cause.text,
        cause.problem.pk if cause.problem else "",
    )
    return [neutralise(value) for value in values]


def _sync_or_404(sync_id: str) -> Sync:
    sync = selectors.sync_for_detail(sync_id)
    if sync is None:
        raise Http404(f"No sync {sync_id}")
    return sync


DETAIL_TABS = (("overview", "Overview"), ("items", "Push items"), ("config", "Config"))


@require_GET
@vary_on_headers("HX-Request")
def sync_detail(request: HtmxHttpRequest, sync_id: str) -> HttpResponse:
    sync = _sync_or_404(sync_id)
    tab = request.GET.get("tab", "overview")
    if tab not in dict(DETAIL_TABS):
        tab = "overview"
    if request.htmx and request.GET.get("poll") and sync.is_terminal:
        # The page asked for a refresh of a sync that has now ended: send
        # the final state once, and tell htmx to stop polling.
        response = render(
            request, "dashboard/sync_detail.html#sync-status", _detail_context(request, sync, tab)
        )
        response.status_code = HttpResponseStopPolling.status_code
        return response
    context = _detail_context(request, sync, tab)
    template = "dashboard/sync_detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#sync-status" if request.GET.get("poll") else "#items-panel"
    form = context.get("item_form")
    return render(request, template, context, status=400 if form and form.errors else 200)


def portal_company_url(company_id: uuid.UUID) -> str:
    """The company in the Codat Portal (`CODAT_PORTAL_URL`)."""
    return f"{settings.CODAT_PORTAL_URL}/companies/{company_id}"


def _detail_context(request: HttpRequest, sync: Sync, tab: str) -> dict[str, Any]:
    counts = selectors.item_counts(sync)
    failed = sum(counts[s] for s in FAILED_ITEM_STATUSES)
    ancestors, retries = selectors.retry_chain(sync)
    # Unknown, a status the upstream rarely reports, is offered only when some item has it.
    item_filters = [
        (choice, n)
        for choice in ItemFilter
        if (n := sum(counts[s] for s in choice.statuses)) or choice != ItemFilter.UNKNOWN
    ]
    context: dict[str, Any] = {
        "sync": sync,
        "company": sync.company,
        "tab": tab,
        "tabs": DETAIL_TABS,
        "here": reverse("sync-detail", args=[sync.sync_id]),
        "note": note_for(sync.status_code),
        "category": Category(sync.category),
        "counts": [(ItemStatus(s), n) for s, n in counts.items()],
        "item_filters": item_filters,
        "items_total": sum(counts.values()),
        "failed_count": failed,
        "can_retry": request.user.has_perm("dashboard.retry_sync"),
        "advice": retry.advice(sync, may_retry=request.user.has_perm("dashboard.retry_sync")),
        "ancestors": ancestors,
        "retries": retries,
        "source_platform": "Sync for Expenses",
        "cause": _sync_cause(sync),
        "portal_url": portal_company_url(sync.company.company_id),
    }
    if tab == "items":
        form = ItemFilterForm(request.GET)
        valid = form.is_valid()
        q = form.cleaned_data.get("q", "") if valid else ""
        status = form.cleaned_data.get("status", "") if valid else ""
        statuses = ItemFilter(status).statuses if status else ()
        items = selectors.filtered_items(sync, q, statuses)
        paginator = Paginator(items, ITEMS_PER_PAGE)
        page_number = (form.cleaned_data.get("page") or 1) if valid else 1
        items_page = paginator.get_page(page_number)
        shown = list(items_page)
        groups = problem_rows.item_problems(sync, shown)

        def filtered(value: str) -> str:
            params = {"tab": "items", "status": value, "q": q}
            return f"{context['here']}?{urlencode({k: v for k, v in params.items() if v})}"

        choices = [("", "All", context["items_total"])]
        choices += [(c.value, c.label, n) for c, n in item_filters]
        if status == ItemFilter.UNKNOWN and not any(c == status for c, _ in item_filters):
            choices.append((status, ItemFilter.UNKNOWN.label, 0))
        context.update(
            {
                "item_form": form,
                "item_status": status,
                # (label, count, link, chosen)
                "status_links": [
                    (label, n, filtered(value), value == status) for value, label, n in choices
                ],
                "items_page": items_page,
                "item_rows": [(item, groups.get(item.pk)) for item in shown],
                "item_query": _query_without(request, "page"),
            }
        )
    if tab == "config":
        context["config"] = sync_config.for_sync(sync)
    return context


def _sync_cause(sync: Sync) -> problem_rows.Cause | None:
    """The problems of the sync's outstanding items, or its own (a failed sync without items)."""
    if not (sync.items_outstanding or sync.problem_id):
        return None
    cause = problem_rows.causes([sync]).get(sync.pk)
    return cause if cause is not None and cause.problems else None


@require_GET
def transaction_detail(request: HttpRequest, transaction_id: uuid.UUID) -> HttpResponse:
    """Every sync that pushed a transaction, newest first, and what is true of it now."""
    if not request.user.has_perm("dashboard.view_pushitem"):
        raise RoleRequired(VIEWER, "see transactions")
    found = search.transaction(transaction_id)
    if not found:
        raise Http404("No sync pushed that transaction.")
    return render(
        request,
        "dashboard/transaction.html",
        {"transaction_id": transaction_id, "transactions": found},
    )


@require_GET
def config_download(request: HttpRequest, company_id: str, snapshot_id: int) -> HttpResponse:
    snapshot = selectors.config_snapshot(company_id, snapshot_id)
    if snapshot is None:
        raise Http404("No such configuration snapshot.")
    audit.config_downloaded(request, snapshot)
    body = json.dumps(snapshot.config, indent=2, sort_keys=True, ensure_ascii=False)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    stamp = snapshot.fetched_at.strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="sync-config-{snapshot.company.company_id}-{stamp}.json"'
    )
    return response


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """How times are shown. Like every page it needs a support role: it sets how the
    others read, and someone without a role has nothing to read."""
    user_id = request.user.pk
    assert user_id is not None  # LoginRequiredMiddleware
    preference = user_preferences.for_user(user_id)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            preference = user_preferences.save(
                preference,
                use_local_time=form.cleaned_data["use_local_time"],
                time_zone=form.cleaned_data["time_zone"],
            )
            request.session[ZONE_SESSION_KEY] = preference.active_zone
            if form.cleaned_data["theme"]:
                preference = user_preferences.save_theme(preference, form.cleaned_data["theme"])
                request.session[THEME_SESSION_KEY] = preference.theme
            messages.success(request, f"Times are now shown in {preference.active_zone}.")
            return HttpResponseRedirect(_back_to(request))
    else:
        form = PreferenceForm(
            initial={
                "use_local_time": preference.use_local_time,
                "time_zone": preference.time_zone,
                "theme": preference.theme,
            }
        )
    return render(request, "dashboard/preferences.html", {"form": form, "preference": preference})


@require_POST
def theme(request: HttpRequest) -> HttpResponse:
    """The header's theme switch: light, dark or the system's, kept on the user's
    preferences; back to the page it was pressed on."""
    user_id = request.user.pk
    assert user_id is not None  # LoginRequiredMiddleware
    form = ThemeForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown theme.")
    preference = user_preferences.save_theme(
        user_preferences.for_user(user_id), form.cleaned_data["theme"]
    )
    request.session[THEME_SESSION_KEY] = preference.theme
    return HttpResponseRedirect(_back_to(request))


def _back_to(request: HttpRequest) -> str:
    """The page a preference was changed from (`next`, on this site only), else the dashboard."""
    target = request.POST.get("next") or reverse("summary")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("summary")
    return target
