"""The item search: failed items across companies, by transaction ID or words of their message."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import failed_items
from .forms import ItemSearchForm
from .roles import VIEWER, RoleRequired


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
