"""The access audit's page: who signed in, who failed to, who exported or downloaded what,
and who was refused. For Support leads and admins."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import audit
from .filters import encode_cursor
from .forms import AccessAuditFilterForm
from .roles import AUDIT_PERMISSION, LEAD, RoleRequired
from .vocabulary import AccessAction


@require_GET
def access_audit(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(AUDIT_PERMISSION):
        raise RoleRequired(LEAD, "see the access audit")
    form = AccessAuditFilterForm(request.GET)
    valid = form.is_valid()
    page = audit.events(form.filters()) if valid else audit.AccessPage([], None)
    query = request.GET.copy()
    query.pop("after", None)
    older = None
    if page.next_after is not None:
        at, pk = page.next_after
        query_older = query.copy()
        query_older["after"] = encode_cursor(at.isoformat(), pk)
        older = query_older.urlencode()
    context = {
        "form": form,
        "page": page,
        "actions": AccessAction,
        "newest_query": query.urlencode(),
        "older_query": older,
        "is_first_page": not request.GET.get("after"),
    }
    return render(request, "dashboard/access_audit.html", context, status=200 if valid else 400)
