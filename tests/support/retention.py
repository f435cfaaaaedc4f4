"""A mirror with history on both sides of the retention cut-off, and what to compare it by.

`history_estate` builds, 400 days being the cut-off, every case the history's
retention decides: chains that may go, and old syncs that must stay (each for
one reason), beside recent syncs. `current_state` reads what a purge or a
prune must leave exact.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from dashboard.ingest import update_streak
from dashboard.models import (
    BulkMember,
    BulkRetry,
    Company,
    RetryRequest,
    Sync,
    TransactionState,
)
from dashboard.vocabulary import BulkState, ItemStatus, RetryState
from tests.support.factories import make_company, make_sync

DAYS = 400
DONE = (ItemStatus.COMPLETED, None)
FAILED = (ItemStatus.PUSH_ERROR, "The period is closed.")


def days(n: float) -> timedelta:
    return timedelta(days=n)


@dataclass
class HistoryEstate:
    """The syncs by role: those that may go, and those that stay (with the reason)."""

    companies: list[Company]
    goes: dict[str, Sync] = field(default_factory=dict)
    stays: dict[str, Sync] = field(default_factory=dict)
    user: User | None = None


def request(user: User, sync: Sync, *, ago: timedelta, state: str, **fields) -> RetryRequest:
    return RetryRequest.objects.create(
        key=uuid.uuid4(),
        user=user,
        sync=sync,
        company_id=sync.company_id,
        state=state,
        created_at=timezone.now() - ago,
        **fields,
    )


def history_estate(user: User) -> HistoryEstate:
    """Three companies' history over 500 days; the cut-off is `DAYS` days ago."""
    acme, brill, crumb = (make_company(name=n) for n in ("Acme", "Brill", "Crumb"))
    estate = HistoryEstate([acme, brill, crumb], user=user)
    goes, stays = estate.goes, estate.stays

    # Acme: plain old history, a resolved chain, an outstanding sync, a chain
    # with a recent retry, old syncs named by requests and bulk retries.
    goes["plain"] = make_sync(acme, ago=days(500), items=[DONE] * 3)
    stays["outstanding"] = make_sync(acme, code=5130, ago=days(450), items=[FAILED, DONE])
    t2 = uuid.uuid4()
    goes["resolved"] = make_sync(
        acme, code=5130, ago=days(440), items=[FAILED], transaction_ids=[t2]
    )
    goes["its retry"] = make_sync(
        acme, ago=days(439), items=[DONE], transaction_ids=[t2], retry_of=goes["resolved"]
    )
    t3 = uuid.uuid4()
    stays["retried lately"] = make_sync(
        acme, code=5130, ago=days(430), items=[FAILED], transaction_ids=[t3]
    )
    stays["its recent retry"] = make_sync(
        acme, ago=days(10), items=[DONE], transaction_ids=[t3], retry_of=stays["retried lately"]
    )
    # A request made after the cut-off (here: refused) names an old sync.
    stays["named lately"] = make_sync(acme, ago=days(480), items=[DONE])
    request(user, stays["named lately"], ago=days(5), state=RetryState.DENIED)
    # An old, finished request goes with the chain it retried, and its old bulk retry.
    bulk = BulkRetry.objects.create(
        key=uuid.uuid4(), user=user, scope="", state=BulkState.FANNED_OUT,
        created_at=timezone.now() - days(438),
    )  # fmt: skip
    old = request(
        user, goes["resolved"], ago=days(438), state=RetryState.COMPLETED, bulk=bulk,
        new_sync_id=goes["its retry"].sync_id, sync_ids=[str(goes["resolved"].sync_id)],
    )  # fmt: skip
    BulkMember.objects.create(
        bulk=bulk, sync=goes["resolved"], company=acme, status_code=5130, items=1, request=old
    )
    # A member of a recent bulk retry stays (its chain resolved long ago).
    stays["in a recent bulk"] = make_sync(acme, ago=days(470), items=[DONE])
    recent_bulk = BulkRetry.objects.create(
        key=uuid.uuid4(), user=user, scope="", state=BulkState.FANNED_OUT,
        created_at=timezone.now() - days(3),
    )  # fmt: skip
    BulkMember.objects.create(
        bulk=recent_bulk, sync=stays["in a recent bulk"], company=acme, status_code=2000,
        items=0, included=False,
    )  # fmt: skip
    # An active request, however old, keeps what it names.
    stays["named by an active request"] = make_sync(acme, ago=days(460), items=[DONE])
    request(user, stays["named by an active request"], ago=days(459), state=RetryState.SUBMITTED)
    make_sync(acme, ago=days(2), items=[DONE] * 2)

    # Brill: an old sync outstanding on one item, whose other failed item a
    # later, unrelated sync completed: that sync resolves it, so it stays too.
    t4, t5 = uuid.uuid4(), uuid.uuid4()
    stays["half resolved"] = make_sync(
        brill, code=5130, ago=days(420), items=[FAILED, FAILED], transaction_ids=[t4, t5]
    )
    stays["its resolver"] = make_sync(brill, ago=days(410), items=[DONE], transaction_ids=[t5])
    goes["brill plain"] = make_sync(brill, ago=days(405), items=[DONE, DONE])
    make_sync(brill, ago=days(1), items=[DONE])

    # Crumb: failing since 440 days ago (configuration errors, no items); its
    # last success stays to end the streak, and older history goes.
    goes["before the streak"] = make_sync(crumb, code=4000, ago=days(470))
    goes["an older success"] = make_sync(crumb, ago=days(460), items=[DONE])
    stays["last success"] = make_sync(crumb, ago=days(450), items=[DONE])
    stays["streak"] = make_sync(crumb, code=4000, ago=days(440))
    make_sync(crumb, code=4000, ago=days(100))
    make_sync(crumb, code=4000, ago=days(5))
    for company in estate.companies:
        update_streak(company)
    for syncs in (goes, stays):
        for sync in syncs.values():
            sync.refresh_from_db()
    return estate


def current_state() -> dict:
    """Everything the current state holds, as plain values."""
    return {
        "states": sorted(
            (s.company_id, str(s.transaction_id), s.last_sync_id, s.status, s.outstanding)
            for s in TransactionState.objects.all()
        ),
        "syncs": sorted(
            Sync.objects.values_list(
                "pk", "items_outstanding", "resolved_at", "resolved_by_id", "chain_category"
            )
        ),
        "companies": sorted(
            Company.objects.values_list(
                "pk", "items_outstanding", "syncs_outstanding", "failing_streak", "failing_since"
            )
        ),
    }
