"""The push items pages: the item search (failed items across companies, by transaction ID or
words of their message), and the push items of a date range (the dashboard's "items pushed")."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from . import failed_items, pushed_items, selectors
from .filters import PRESETS
from .forms import ItemSearchForm, PushedItemsForm
from .roles import VIEWER, RoleRequired
from .vocabulary import ItemFilter


@require_GET
def item_search(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("dashboard.view_pushitem"):
        raise RoleRequired(VIEWER, "search items")
    form = ItemSearchForm(request.GET)
    valid = form.is_valid()
    q = form.cleaned_data.get("q", "") if valid else ""
    found = failed_items.find(q, form.cleaned_data.get("after")) if q else None
    query = request.GET.copy()
    query.pop("after", None)
    next_query = None
    if found is not None and found.next_cursor:
        following = query.copy()
        following["after"] = found.next_cursor
        next_query = following.urlencode()
    context = {
        "form": form,
        "q": q,
        "found": found,
        "first_query": query.urlencode(),
        "next_query": next_query,
        "is_first_page": not request.GET.get("after"),
        "scan": failed_items.SCAN,
        "id_digits": failed_items.ID_DIGITS_MIN,
    }
    return render(request, "dashboard/item_search.html", context, status=200 if valid else 400)


# What the page shares with the dashboard: its link back keeps them.
_DASHBOARD_PARAMS = ("range", "start", "end", "platform")
# The status filter's choices; Unknown, a status the upstream rarely reports, only when chosen.
_STATUS_LINKS = (ItemFilter.FAILED, ItemFilter.COMPLETED, ItemFilter.PENDING)


@require_GET
def items_pushed(request: HttpRequest) -> HttpResponse:
    """The push items of a date range (and platform), newest sync first, by status."""
    if not request.user.has_perm("dashboard.view_pushitem"):
        raise RoleRequired(VIEWER, "see push items")
    form = PushedItemsForm(request.GET)
    valid = form.is_valid()
    query = request.GET.copy()
    query.pop("after", None)
    context = {
        "form": form,
        "presets": PRESETS,
        "span": form.date_range(),
        "first_query": query.urlencode(),
        "dashboard_query": urlencode(
            {key: request.GET[key] for key in _DASHBOARD_PARAMS if request.GET.get(key)}
        ),
        "is_first_page": not request.GET.get("after"),
        "scan": pushed_items.SCAN,
    }
    if valid:
        filters = form.filters()
        status = form.item_filter
        found = pushed_items.page(filters, status, form.cleaned_data.get("after"))
        completed, failed = selectors.item_totals(filters)
        if found.next_cursor:
            following = query.copy()
            following["after"] = found.next_cursor
            context["next_query"] = following.urlencode()
        context.update(
            {
                "filters": filters,
                "status": status,
                "found": found,
                "completed": completed,
                "failed": failed,
                "status_links": _status_links(query, status, completed, failed),
            }
        )
    return render(request, "dashboard/items_pushed.html", context, status=200 if valid else 400)


def _status_links(
    query: QueryDict, status: ItemFilter | None, completed: int, failed: int
) -> list[tuple[str, int | None, str, bool]]:
    """(label, the range's count where the dashboard counts it, query, chosen) of each choice."""
    known = {ItemFilter.COMPLETED: completed, ItemFilter.FAILED: failed}
    choices: list[ItemFilter | None] = [None, *_STATUS_LINKS]
    if status == ItemFilter.UNKNOWN:
        choices.append(status)
    links = []
    for choice in choices:
        params = query.copy()
        params.pop("status", None)
        if choice is not None:
            params["status"] = choice.value
        label = "All" if choice is None else choice.label
        count = None if choice is None else known.get(choice)
        links.append((label, count, params.urlencode(), choice == status))
    return links
