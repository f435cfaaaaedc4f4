"""The first import's banner, shown on every page while the mirror reads its companies once."""

from __future__ import annotations

from typing import Any

from django import template

from dashboard import live
from dashboard.roles import READ_PERMISSION

register = template.Library()


@register.inclusion_tag("dashboard/_first_import.html", takes_context=True)
def first_import_banner(context: dict[str, Any]) -> dict[str, Any]:
    """The banner (polling until the import is done) for someone who may read the pages."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm(READ_PERMISSION):
        return {"progress": None}
    progress = live.first_import()
    return {"progress": progress if progress.running else None, "poll": live.poll_seconds()}
