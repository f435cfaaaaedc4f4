"""The header's jump: any sync, company or transaction ID (or its first 8+ digits), or a
company name, straight to its page, or a list to choose from when several match.

The lookup is the history's (`dashboard.search`); this module only decides
where to go. Like every page it needs a support role.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from . import search
from .filters import id_range, short_id
from .forms import MAX_SEARCH

TEMPLATE = "dashboard/jump.html"


def _target(found: search.Found) -> str | None:
    """The page of the one thing found, if exactly one thing was."""
    if found.count != 1:
        return None
    if found.companies:
        return reverse("company-detail", args=[found.companies[0].company_id])
    if found.syncs:
        return reverse("sync-detail", args=[found.syncs[0].sync_id])
    return reverse("transaction-detail", args=[found.transactions[0].transaction_id])


@require_GET
def jump(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("q", "")
    if len(raw) > MAX_SEARCH:
        context = {"q": raw[:80], "too_long": len(raw), "max": MAX_SEARCH}
        return render(request, TEMPLATE, context, status=400)
    q = " ".join(raw.split())
    if not q:
        return render(request, TEMPLATE, {"q": ""})
    found = search.find(q)
    target = _target(found)
    if target is not None:
        return HttpResponseRedirect(target)
    context = {
        "q": q,
        "found": found,
        "history_query": urlencode({"q": q, "range": "all"}),
        "short_id": found.ids is None and (short_id(q) or id_range(q) is not None),
        "prefix_min": search.JUMP_PREFIX_MIN,
        "list_cap": search.JUMP_LIST_CAP if found.by_name else search.MATCH_CAP,
    }
    return render(request, TEMPLATE, context, status=200 if found.count else 404)
