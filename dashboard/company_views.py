"""The companies' pages: the index of every company, and one company's page with its
timeline. They only read; like every page they need a support role.

The index's sort, search, filters and page live in the URL; an htmx request
gets the table (the `company-results` partial), a company page's htmx request
its timeline (`timeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.middleware import HtmxDetails

from . import companies, health_signals, selectors
from .companies.listing import ASC, DESC
from .company_forms import CompanyFilterForm, TimelineForm


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _query_without(request: HttpRequest, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


def _partial(request: HtmxHttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.boosted


@dataclass(frozen=True)
class Column:
    """A sortable column's header: where clicking it leads, and how it is sorted now."""

    key: str
    label: str
    href: str
    # "ascending" / "descending" for the column the page is sorted by, else "".
    sorted: str
    numeric: bool


def _columns(request: HttpRequest, filters: companies.CompanyFilter | None) -> list[Column]:
    """Each sort's header: its natural direction first, a second click reverses it."""
    base = _query_without(request, "sort", "dir", "after", "before")
    columns = []
    for key, sort in companies.SORTS.items():
        direction, shown = sort.natural, ""
        if filters is not None and filters.sort == key:
            direction = ASC if filters.direction == DESC else DESC
            shown = "ascending" if filters.direction == ASC else "descending"
        query = urlencode({"sort": key, "dir": direction})
        href = "?" + (f"{base}&{query}" if base else query)
        columns.append(Column(key, sort.label, href, shown, sort.kind is int))
    return columns


@require_GET
@vary_on_headers("HX-Request")
def company_list(request: HtmxHttpRequest) -> HttpResponse:
    form = CompanyFilterForm(request.GET)
    valid = form.is_valid()
    context: dict[str, Any] = {
        "form": form,
        "sorts": companies.SORTS,
        # Sorting or searching starts again from the first page.
        "sort_query": _query_without(request, "sort", "dir", "after", "before"),
        "page_query": _query_without(request, "after", "before"),
        "is_first_page": not (request.GET.get("after") or request.GET.get("before")),
    }
    if valid:
        filters = form.filters()
        context["filters"] = filters
        context["page"] = companies.page(filters)
        context["columns"] = _columns(request, filters)
    template = "dashboard/companies.html"
    if _partial(request):
        template += "#company-results"
    # An htmx request's error shows its message (htmx drops an error's body).
    status = 200 if valid or _partial(request) else 400
    return render(request, template, context, status=status)


@require_GET
@vary_on_headers("HX-Request")
def company_detail(request: HtmxHttpRequest, company_id: str) -> HttpResponse:
    overview = selectors.company_overview(company_id)
    if overview is None:
        raise Http404("No such company.")
    company = overview.company
    form = TimelineForm(request.GET)
    valid = form.is_valid()
    context = {
        "company": company,
        "recent": overview.recent,
        "latest": overview.recent[0] if overview.recent else None,
        "last_success": overview.last_success,
        "snapshots": overview.snapshots,
        "history_query": f"company={company.company_id}&range=all",
        "refresh": getattr(company, "refresh", None),
        "missed_webhooks": health_signals.company_missed_webhooks(
            company, timezone.now() - health_signals.LOOK_BACK
        )
        if health_signals.expecting_webhooks()
        else None,
        "timeline_form": form,
        "timeline": companies.timeline(company, form.cleaned_data["timeline_after"])
        if valid
        else None,
        "timeline_query": _query_without(request, "timeline_after"),
        "timeline_first": not request.GET.get("timeline_after"),
    }
    template = "dashboard/company.html"
    if _partial(request):
        template += "#timeline"
    status = 200 if valid or _partial(request) else 400
    return render(request, template, context, status=status)
