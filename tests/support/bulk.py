"""Driving a bulk retry through its pages, as a person does: open, untick, confirm."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.test import Client
from django.urls import reverse

from dashboard.models import BulkMember, BulkRetry


def open_preview(client: Client, query: str) -> BulkRetry:
    """Open the preview of a filter; returns the draft it froze."""
    response = client.get(reverse("bulk-retry") + "?" + query)
    assert response.status_code == 302, response.content.decode()[:2000]
    bulk = BulkRetry.objects.latest("pk")
    assert response["Location"] == reverse("bulk-review", args=[bulk.pk])
    return bulk


def listed_syncs(page: str) -> set[str]:
    """The sync IDs a preview or report page lists as members."""
    return set(re.findall(r'data-sync="([0-9a-f-]{36})"', page))


def shown_count(page: str) -> int:
    """The number of syncs a preview page says confirming retries (on its button)."""
    found = re.search(r'data-testid="bulk-syncs">([\d,]+)<', page)
    assert found, "the page shows how many syncs it would retry"
    return int(found.group(1).replace(",", ""))


def review_post(
    client: Client,
    bulk: BulkRetry,
    *,
    leave_out: Iterable[str] = (),
    confirm: bool = False,
    typed: str | None = None,
    expected: int | None = None,
    extra: dict | None = None,
):
    """Post the preview's form as its first page shows it, unticking the syncs in `leave_out`.

    `expected` defaults to the number the page showed before this post.
    """
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    shown = list(
        BulkMember.objects.filter(bulk=bulk, sync__sync_id__in=listed_syncs(page)).values_list(
            "pk", "sync__sync_id", "included"
        )
    )
    leave = {str(s) for s in leave_out}
    data: dict = {
        "key": str(bulk.key),
        "expected": shown_count(page) if expected is None else expected,
        "shown": [pk for pk, _, _ in shown],
        "keep": [pk for pk, sync_id, included in shown if included and str(sync_id) not in leave],
    }
    if confirm:
        data["confirm"] = "1"
    else:
        data["update"] = "1"
    if typed is not None:
        data["typed"] = typed
    data.update(extra or {})
    return client.post(reverse("bulk-review", args=[bulk.pk]), data)
