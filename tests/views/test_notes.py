"""No note recommends an action the page cannot take.

Each status code's note names the fix; the retry sentence after it comes from
the sync itself: offered (with the button) only where something is
outstanding and the reader may retry; otherwise the page says why not and
what to do instead.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from dashboard.vocabulary import IN_PROGRESS_CODES, NOTES, STATUS_CODES, ItemStatus
from tests.support.factories import make_company, make_sync

FAILED = (int(ItemStatus.PUSH_ERROR), "The period is closed.")
PENDING = (int(ItemStatus.PENDING), None)
DONE = (int(ItemStatus.COMPLETED), None)


def _advice(client, sync) -> tuple[str, bool]:
    page = client.get(reverse("sync-detail", args=[sync.sync_id])).content.decode()
    found = re.search(r'data-testid="retry-advice">([^<]*)<', page)
    assert found, "every sync page says what a retry can do"
    return found.group(1), 'data-testid="retry-button"' in page


def test_no_note_recommends_a_retry_by_itself():
    for code, note in NOTES.items():
        assert "retry" not in note.next_step.lower(), code


@pytest.mark.parametrize("code", sorted(c for c in STATUS_CODES if c not in IN_PROGRESS_CODES))
def test_every_ended_code_offers_a_retry_exactly_when_one_is_possible(runner_client, db, code):
    company = make_company()
    with_items = make_sync(company, code=code, items=[FAILED, FAILED, DONE])
    text, button = _advice(runner_client, with_items)
    assert button and "retry the 2 outstanding items with the button below" in text
    without = make_sync(company, code=code, ago=timedelta(hours=2), items=[DONE])
    text, button = _advice(runner_client, without)
    assert not button
    assert "nothing to retry here" in text and "retry the" not in text


def test_a_server_error_with_pending_items_can_be_retried(runner_client, db):
    sync = make_sync(make_company(), code=5000, items=[PENDING] * 7)
    assert sync.items_outstanding == 7
    text, button = _advice(runner_client, sync)
    assert button and "retry the 7 outstanding items" in text
    page = runner_client.get(reverse("sync-retry", args=[sync.sync_id])).content.decode()
    assert 'data-testid="retry-count">7<' in page


@pytest.mark.parametrize("code", sorted(IN_PROGRESS_CODES))
def test_a_running_sync_says_when_a_retry_becomes_possible(runner_client, db, code):
    sync = make_sync(make_company(), code=code, items=[PENDING, PENDING])
    text, button = _advice(runner_client, sync)
    assert not button and "once the sync has ended" in text


def test_a_reader_who_may_not_retry_is_told_who_can(viewer_client, db):
    sync = make_sync(make_company(), code=5130, items=[FAILED])
    text, button = _advice(viewer_client, sync)
    assert not button
    assert "(the Support runner or Support lead role); you cannot retry syncs." in text


def test_a_resolved_sync_names_what_resolved_it(runner_client, db):
    company = make_company()
    original = make_sync(company, code=5130, ago=timedelta(hours=3), items=[FAILED, FAILED])
    tids = list(original.items.values_list("transaction_id", flat=True))
    retry = make_sync(
        company, code=2000, ago=timedelta(hours=1), items=[DONE, DONE], transaction_ids=tids,
        retry_of=original,
    )  # fmt: skip
    original.refresh_from_db()
    assert (original.items_outstanding, original.resolved_by_id) == (0, retry.pk)
    text, button = _advice(runner_client, original)
    assert not button
    assert text.startswith(f"Resolved by retry {retry.sync_id} at ")
    page = runner_client.get(reverse("sync-retry", args=[original.sync_id])).content.decode()
    assert "Resolved by retry" in page and 'data-testid="confirm-retry"' not in page
