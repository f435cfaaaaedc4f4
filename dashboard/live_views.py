"""The small answers the open pages poll for (every `LIVE_POLL_SECONDS` while the tab is
visible; static/js/app.js holds the requests back while it is hidden).

- the dashboard's totals, again (the summary's partial, with what is outstanding now
  and what arrived since the last visit swapped in beside it);
- the history's "12 new syncs — show": counted, never inserted under the reader's
  cursor, and only for the first page in the newest-first order;
- the first import's banner, until every company has been read once.

Like every page they need a login and a support role, and answer `no-store`
(`dashboard.access`). Polling is not a visit: the last-visit time stays put.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from . import live, selectors
from .filters import decode_cursor
from .forms import SyncFilterForm
from .views import last_visit, summary_links

# A poller told this stops asking: nothing will come (another page or sort, the import done).
STOP = HttpResponseStopPolling.status_code


def _invalid(form: SyncFilterForm) -> HttpResponse:
    return HttpResponse(
        "Invalid filter: " + "; ".join(str(e) for errs in form.errors.values() for e in errs),
        status=400,
        content_type="text/plain; charset=utf-8",
    )


@require_GET
def summary_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's totals for its filters, as the page shows them."""
    form = SyncFilterForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    filters = form.filters()
    since = last_visit(request, mark=False)
    context = {
        "filters": filters,
        "summary": selectors.totals(filters),
        **summary_links(request, filters),
        "live_query": request.GET.urlencode(),
        "poll": live.poll_seconds(),
        "arrived": live.arrived_since(since) if since else None,
        "live": True,
    }
    return render(request, "dashboard/summary.html#live-totals", context)


@require_GET
def history_new(request: HttpRequest) -> HttpResponse:
    """How many syncs the history's filters select above its top row (`newest`, the top
    row's cursor; none for an empty page), up to a bound."""
    form = SyncFilterForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    filters = form.filters()
    if filters.after is not None or filters.sort != "time" or not filters.descending:
        # Only the first page, newest first, has a top that new syncs come above.
        return HttpResponse("", status=STOP)
    raw = request.GET.get("newest", "")
    newest = decode_cursor(raw, "time") if raw else None
    if raw and newest is None:
        return HttpResponse(
            "That mark of the newest sync shown is not valid; load the history again.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    params = request.GET.copy()
    params.pop("newest", None)
    context = {
        "new": live.newer_syncs(filters, newest),
        "first_page_query": params.urlencode(),
    }
    return render(request, "dashboard/_new_syncs.html", context)


@require_GET
def first_import(request: HttpRequest) -> HttpResponse:
    """The first import's banner while it runs; nothing (and stop asking) once it is done."""
    progress = live.first_import()
    if not progress.running:
        return HttpResponse("", status=STOP)
    return render(
        request,
        "dashboard/_first_import.html",
        {"progress": progress, "poll": live.poll_seconds()},
    )
