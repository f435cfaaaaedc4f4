"""Pages of the Sync Health dashboard. Every one needs a login; they only read.

Filters live in the URL (shareable; the back button works). htmx requests
get the page's swappable region as a partial of the same template.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from . import selectors
from .forms import PRESETS, SORTS, ItemFilterForm, PreferenceForm, SyncFilterForm, code_choices
from .middleware import ZONE_SESSION_KEY
from .models import (
    STATUS_CODES,
    Category,
    Company,
    ConfigSnapshot,
    ItemStatus,
    Sync,
    UserPreference,
)
from .notes import note_for

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


def _base_context(request: HttpRequest, form: SyncFilterForm) -> dict[str, Any]:
    return {
        "form": form,
        "presets": PRESETS,
        "span": form.date_range(),
        "categories": Category,
        "status_codes": STATUS_CODES,
        "code_groups": code_choices(),
    }


@require_GET
@vary_on_headers("HX-Request")
def summary(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request)
    context = _base_context(request, form)
    if form.errors:
        context["summary"] = selectors.Summary()
    else:
        context["summary"] = selectors.summary(form)
    context["range_query"] = _query_without(
        request, "code", "category", "failed_items", "after", "sort", "dir"
    )
    context["chart"] = _chart(
        context["summary"], reverse("sync-history"), form.cleaned_data.get("platform") or ""
    )
    return render(request, "dashboard/summary.html", context)


def _chart(summary: selectors.Summary, history_url: str, platform: str) -> dict[str, Any]:
    """The stacked bar chart: its geometry, and the bars' SVG built here.

    Each segment is a link to the history of its day and outcome, with a
    title; through the template engine, ninety days of them cost more than
    the rest of the page.
    """
    buckets = summary.buckets
    hourly = summary.bucket_unit == "hour"
    width, height = 760, 180
    if not buckets:
        return {"bars": [], "width": width, "height": height, "max": 0}
    peak = max((b["success"] + b["failed"] + b["in_progress"]) for b in buckets) or 1
    slot = width / len(buckets)
    bar_width = f"{max(slot * 0.8, 1):.2f}"
    bars = []
    for index, bucket in enumerate(buckets):
        start = bucket["start"]
        y = float(height)
        segments = []
        for key, css in (("success", "ok"), ("failed", "bad"), ("in_progress", "run")):
            value = bucket[key]
            h = value / peak * (height - 10)
            y -= h
            if value:
                segments.append(
                    {"key": key, "css": css, "value": value, "y": f"{y:.2f}", "h": f"{h:.2f}"}
                )
        bars.append(
            {
                "x": f"{index * slot + slot * 0.1:.2f}",
                "w": bar_width,
                "segments": segments,
                "bucket": bucket,
                "day": start.strftime("%Y-%m-%d"),
                "label": start.strftime("%Y-%m-%d %H:%M"),
                # The axis label: `date:"H:i"` for hours, `date:"M j"` for days.
                "tick": f"{start:%H:%M}" if hourly else f"{start:%b} {start.day}",
            }
        )
    ticks = [b for b in bars[:: max(1, len(bars) // 8)]]
    platform_query = f"&amp;platform={escape(quote(platform))}" if platform else ""
    # Every value is a number, a day, a key of ours or an escaped platform: no text to escape.
    bars_svg = mark_safe(  # noqa: S308
        "".join(
            f'<a href="{history_url}?range=custom&amp;start={bar["day"]}&amp;end={bar["day"]}'
            f'&amp;category={seg["key"]}{platform_query}"><rect class="{seg["css"]}" '
            f'x="{bar["x"]}" y="{seg["y"]}" width="{bar["w"]}" height="{seg["h"]}">'
            f"<title>{bar['label']}: {seg['value']} {seg['key'].replace('_', ' ')}</title>"
            "</rect></a>"
            for bar in bars
            for seg in bar["segments"]
        )
    )
    return {
        "bars": bars,
        "bars_svg": bars_svg,
        "width": width,
        "height": height,
        "max": peak,
        "ticks": ticks,
    }


@require_GET
@vary_on_headers("HX-Request")
def history(request: HtmxHttpRequest) -> HttpResponse:
    form = _filter_form(request)
    context = _base_context(request, form)
    page = None if form.errors else selectors.history_page(form)
    context.update(
        {
            "page": page,
            "sort_choices": list(SORTS.items()),
            "sort_query": _query_without(request, "sort", "dir", "after"),
            "page_query": _query_without(request, "after"),
            "export_query": _query_without(request, "after"),
            "is_first_page": not request.GET.get("after"),
        }
    )
    template = "dashboard/history.html"
    if request.htmx and not request.htmx.boosted:
        template += "#history-results"
    return render(request, template, context)


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
    if form.errors:
        return HttpResponse(
            "Invalid filter: " + "; ".join(str(e) for errs in form.errors.values() for e in errs),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    sort = form.cleaned_data.get("sort") or "time"
    descending = (form.cleaned_data.get("dir") or "desc") == "desc"
    rows = (
        selectors.filtered_syncs(form)
        .select_related("company")
        .order_by(*selectors._ordering(selectors.SORT_COLUMNS[sort], descending))
    )
    writer = csv.writer(_Echo())
    header = [
        "sync_id", "company_id", "company", "platform", "status_code", "status", "category",
        "sync_utc", "completed_utc", "duration_s", "items", "items_completed", "items_failed",
        "data_pushed", "error_message",
    ]  # fmt: skip

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for sync in rows.iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    neutralise(value)
                    for value in (
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
                        "yes" if sync.data_pushed else "no",
                        sync.error_message,
                    )
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="sync-history-{stamp}.csv"'
    return response


def _sync_or_404(sync_id: str) -> Sync:
    return get_object_or_404(Sync.objects.select_related("company", "retry_of"), sync_id=sync_id)


@require_GET
@vary_on_headers("HX-Request")
def sync_detail(request: HtmxHttpRequest, sync_id: str) -> HttpResponse:
    sync = _sync_or_404(sync_id)
    tab = request.GET.get("tab", "overview")
    if tab not in ("overview", "items", "config"):
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
        template += "#sync-status" if request.GET.get("poll") else "#items-table"
    return render(request, template, context)


def _detail_context(request: HttpRequest, sync: Sync, tab: str) -> dict[str, Any]:
    counts = selectors.item_counts(sync)
    failed = sum(
        counts[s] for s in (ItemStatus.VALIDATION_ERROR, ItemStatus.PUSH_ERROR, ItemStatus.FAILED)
    )
    ancestors, retries = selectors.retry_chain(sync)
    context: dict[str, Any] = {
        "sync": sync,
        "company": sync.company,
        "tab": tab,
        "note": note_for(sync.status_code),
        "category": Category(sync.category),
        "counts": [(ItemStatus(s), n) for s, n in counts.items()],
        "items_total": sum(counts.values()),
        "failed_count": failed,
        "can_retry": request.user.has_perm("dashboard.retry_sync"),
        "ancestors": ancestors,
        "retries": retries,
        "source_platform": "Sync for Expenses",
    }
    if tab == "items":
        form = ItemFilterForm(request.GET)
        form.is_valid()
        q = form.cleaned_data.get("q", "") if not form.errors else ""
        statuses = form.cleaned_data.get("status", []) if not form.errors else []
        items = selectors.filtered_items(sync, q, statuses)
        paginator = Paginator(items, ITEMS_PER_PAGE)
        page_number = form.cleaned_data.get("page") or 1 if not form.errors else 1
        context.update(
            {
                "item_form": form,
                "items_page": paginator.get_page(page_number),
                "item_query": _query_without(request, "page"),
                "statuses": list(ItemStatus),
            }
        )
    if tab == "config":
        current, previous = selectors.config_for(sync)
        context.update(
            {
                "config": current,
                "previous_config": previous,
                "config_json": selectors.pretty(current.config) if current else "",
                "config_diff": selectors.config_diff(current, previous) if current else [],
            }
        )
    return context


@require_GET
def config_download(request: HttpRequest, company_id: str, snapshot_id: int) -> HttpResponse:
    snapshot = get_object_or_404(
        ConfigSnapshot.objects.select_related("company"),
        pk=snapshot_id,
        company__company_id=company_id,
    )
    body = json.dumps(snapshot.config, indent=2, sort_keys=True, ensure_ascii=False)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    stamp = snapshot.fetched_at.strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="sync-config-{snapshot.company.company_id}-{stamp}.json"'
    )
    return response


@require_GET
def company_detail(request: HttpRequest, company_id: str) -> HttpResponse:
    company = get_object_or_404(Company.objects.select_related("refresh"), company_id=company_id)
    syncs = Sync.objects.filter(company=company)
    terminal = syncs.exclude(status_code__in=(1000, 1010)).order_by("-sync_utc", "-id")
    context = {
        "company": company,
        "recent": list(syncs.order_by("-sync_utc", "-id")[:25]),
        "latest": syncs.order_by("-sync_utc", "-id").first(),
        "last_success": terminal.filter(category=Category.SUCCESS).first(),
        "snapshots": list(
            ConfigSnapshot.objects.filter(company=company).order_by("-fetched_at", "-pk")[:20]
        ),
        "history_query": f"company={company.company_id}&range=all",
        "refresh": getattr(company, "refresh", None),
    }
    return render(request, "dashboard/company.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    preference, _ = UserPreference.objects.get_or_create(user=request.user)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            preference.use_local_time = form.cleaned_data["use_local_time"]
            preference.time_zone = form.cleaned_data["time_zone"]
            preference.save(update_fields=["use_local_time", "time_zone"])
            request.session[ZONE_SESSION_KEY] = preference.active_zone
            messages.success(request, f"Times are now shown in {preference.active_zone}.")
            target = request.POST.get("next") or reverse("summary")
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
                target = reverse("summary")
            return HttpResponseRedirect(target)
    else:
        form = PreferenceForm(
            initial={"use_local_time": preference.use_local_time, "time_zone": preference.time_zone}
        )
    return render(request, "dashboard/preferences.html", {"form": form, "preference": preference})


def not_found(sync_id: str) -> Http404:
    return Http404(f"No sync {sync_id}")
