"""Retention of the history: old retry chains and their items, removed in small batches.

"History older than the cut-off" is every retry chain (an original and its
retries) whose syncs all started before the cut-off, with their push items,
retry requests and bulk retry members. A chain goes as a whole or not at all,
and stays, however old, while any of its syncs

- is still running, or has an outstanding item (the current state names it);
- is named by a retry request that stays (one still active, or made after the
  cut-off: as the sync it retries, the sync it started, or a sync its POST
  named), or is a member of a bulk retry that stays (made after the cut-off,
  or not settled);
- is part of its company's failing streak, or is the company's last success
  (the attempt that ends the streak): the streak would change without it;
- pushed a transaction that a sync which stays had pushed, at the same time or
  before, without completing it: its push may be what resolved that one.

So removing a chain changes no current state of what stays: a kept sync's
outstanding items, resolution and chain category depend only on its own
unfinished items and the pushes after them, which all stay, and a transaction
whose latest push goes was not outstanding (its state row goes with that
sync). Nothing is recomputed. The rollup's triggers mark the removed syncs'
hours and the rollup task rebuilds them from what stays: counts of kept hours
do not change, and older hours count only the syncs kept.

Each batch is one transaction under its companies' current-state lock (as
ingest's writes take it), read in time order from where the last one stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.deletion import ProtectedError

from ..db import retention as db_retention
from ..ingest import state
from ..models import (
    BulkMember,
    BulkRetry,
    Company,
    PushItem,
    RetryRequest,
    Sync,
    TransactionState,
)
from ..vocabulary import (
    ACTIVE_RETRY_STATES,
    IN_PROGRESS_CODES,
    SETTLED_BULK_STATES,
    Category,
)

# Where the next batch starts: the last original read, by start then pk.
Cursor = tuple[datetime, int]
_FIELDS = (
    "pk",
    "sync_id",
    "company_id",
    "sync_utc",
    "status_code",
    "items_outstanding",
    "items_total",
    "retry_of_id",
    "category",
    "chain_category",
)

# Why a chain older than the cut-off stays (the counts' keys in a report).
NEWER = "kept: a retry after the cut-off"
RUNNING = "kept: still running"
OUTSTANDING = "kept: outstanding items"
RETRY_REQUEST = "kept: named by a retry request"
BULK_RETRY = "kept: in a bulk retry"
STREAK = "kept: the company's failing streak"
LAST_SUCCESS = "kept: the company's last success"
NEEDED = "kept: resolves an older sync that stays"


@dataclass
class Chain:
    """An original and its retries, as read: one row per sync."""

    root: dict[str, Any]
    syncs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> int:
        return sum(row["items_total"] for row in self.syncs)


@dataclass
class Batch:
    """What one batch removed (or would), and where the next one starts (None: done)."""

    counts: Counter[str]
    cursor: Cursor | None
    # The syncs removed (or, in a dry run, that would be).
    removed: set[int] = field(default_factory=set)


def batches(
    before: datetime,
    *,
    dry_run: bool = False,
    max_syncs: int | None = None,
    max_items: int | None = None,
) -> Iterator[Counter[str]]:
    """Remove the history older than `before`, one batch per step; yields each batch's counts.

    A dry run removes nothing and counts what a run would remove.
    """
    max_syncs = max_syncs or settings.RETENTION_BATCH_SYNCS
    max_items = max_items or settings.RETENTION_BATCH_ITEMS
    cursor: Cursor | None = None
    pruned: set[int] = set()
    named = named_by_requests()
    retried = False
    while True:
        try:
            batch = prune_batch(
                before,
                cursor,
                max_syncs=max_syncs,
                max_items=max_items,
                dry_run=dry_run,
                pruned=pruned,
                named=named,
            )
        except ProtectedError:
            # A retry request named one of its syncs meanwhile: choose again, once.
            if retried:
                raise
            retried = True
            continue
        retried = False
        if dry_run:
            pruned |= batch.removed
        yield batch.counts
        if batch.cursor is None:
            break
        cursor = batch.cursor
    if not dry_run:
        yield Counter({"bulk retries": remove_empty_bulk_retries(before)})


def prune_batch(
    before: datetime,
    after: Cursor | None = None,
    *,
    max_syncs: int,
    max_items: int,
    dry_run: bool = False,
    pruned: set[int] | None = None,
    named: Named | None = None,
) -> Batch:
    """Read the next chains older than `before` (at most `max_syncs` syncs and `max_items`
    items, or one chain larger than that) and remove those that may go.

    `pruned`: in a dry run, the syncs earlier batches would have removed.
    `named`: `named_by_requests()`, read once for many batches.
    """
    with transaction.atomic():
        heads = Sync.objects.filter(retry_of__isnull=True, sync_utc__lt=before)
        if after is not None:
            heads = heads.filter(sync_utc__gte=after[0]).exclude(
                sync_utc=after[0], pk__lte=after[1]
            )
        roots = _within(
            heads.order_by("sync_utc", "pk").values_list("pk", "company_id", "items_total")[
                :max_syncs
            ],
            max_items,
        )
        if not roots:
            return Batch(Counter(), None)
        if not dry_run:
            # Before reading anything that ingest writes under this lock.
            state.lock_companies(company for _, company in roots)
        chains = _take(_chains([pk for pk, _ in roots]), max_syncs, max_items)
        last = chains[-1].root
        cursor = (last["sync_utc"], last["pk"])
        kept = keep(
            chains, before, pruned or set(), named_by_requests() if named is None else named
        )
        going = [chain for chain in chains if chain.root["pk"] not in kept]
        pks = {row["pk"] for chain in going for row in chain.syncs}
        counts: Counter[str] = Counter()
        for chain in chains:
            if chain.root["pk"] in kept:
                counts[kept[chain.root["pk"]]] += len(chain.syncs)
        if dry_run:
            counts["syncs"] += len(pks)
            counts["push items"] += sum(chain.items for chain in going)
            counts["retry requests"] += RetryRequest.objects.filter(sync_id__in=pks).count()
        elif pks:
            counts.update(remove_syncs(sorted(pks)))
    return Batch(counts, cursor, pks)


def _within(roots: Iterable[tuple[int, int, int]], max_items: int) -> list[tuple[int, int]]:
    """(pk, company) of the first originals whose own items fit in `max_items` (at least one)."""
    taken: list[tuple[int, int]] = []
    items = 0
    for pk, company, total in roots:
        items += total
        if taken and items > max_items:
            break
        taken.append((pk, company))
    return taken


def _chains(roots: list[int]) -> list[Chain]:
    """The chains of these originals, in their order: each original with its retries."""
    rows = {row["pk"]: row for row in Sync.objects.filter(pk__in=roots).values(*_FIELDS)}
    chains = {pk: Chain(rows[pk], [rows[pk]]) for pk in roots}
    root_of = {pk: pk for pk in roots}
    frontier = list(roots)
    # A retry names its original; follow further links too, should one name a retry.
    while frontier:
        found = [
            row
            for row in Sync.objects.filter(retry_of_id__in=frontier).values(*_FIELDS)
            if row["pk"] not in root_of
        ]
        for row in found:
            root_of[row["pk"]] = root_of[row["retry_of_id"]]
            chains[root_of[row["pk"]]].syncs.append(row)
        frontier = [row["pk"] for row in found]
    return [chains[pk] for pk in roots]


def _take(chains: list[Chain], max_syncs: int, max_items: int) -> list[Chain]:
    """The first chains within the limits (at least one)."""
    taken: list[Chain] = []
    syncs = items = 0
    for chain in chains:
        syncs += len(chain.syncs)
        items += chain.items
        if taken and (syncs > max_syncs or items > max_items):
            break
        taken.append(chain)
    return taken


def keep(chains: list[Chain], before: datetime, pruned: set[int], named: Named) -> dict[int, str]:
    """The chains that stay, by their original's pk, each with why."""
    kept: dict[int, str] = {}
    root_of = {row["pk"]: chain.root["pk"] for chain in chains for row in chain.syncs}
    for chain in chains:
        for row in chain.syncs:
            if row["sync_utc"] >= before:
                kept.setdefault(chain.root["pk"], NEWER)
            elif row["status_code"] in IN_PROGRESS_CODES:
                kept.setdefault(chain.root["pk"], RUNNING)
            elif row["items_outstanding"] > 0:
                kept.setdefault(chain.root["pk"], OUTSTANDING)
    for pk in TransactionState.objects.filter(
        last_sync_id__in=list(root_of), outstanding=True
    ).values_list("last_sync_id", flat=True):
        kept.setdefault(root_of[pk], OUTSTANDING)
    staying_bulk = Q(bulk__created_at__gte=before) | ~Q(bulk__state__in=SETTLED_BULK_STATES)
    for pk in BulkMember.objects.filter(staying_bulk, sync_id__in=list(root_of)).values_list(
        "sync_id", flat=True
    ):
        kept.setdefault(root_of[pk], BULK_RETRY)
    for root, why in _streaks(chains).items():
        kept.setdefault(root, why)
    requests = _requests(chains, named)
    pairs = db_retention.earlier_unfinished(
        [(row["pk"], row["company_id"], row["sync_utc"]) for chain in chains for row in chain.syncs]
    )
    # Keeping one chain may keep another (a request it holds, a push it needs).
    changed = True
    while changed:
        changed = False
        alive = {pk for pk, root in root_of.items() if root not in kept}
        for request in requests:
            goes = (
                request["state"] not in ACTIVE_RETRY_STATES
                and request["created_at"] < before
                and (request["sync_id"] in alive or request["sync_id"] in pruned)
            )
            if goes:
                continue
            for pk in request["named"]:
                if root_of[pk] not in kept:
                    kept[root_of[pk]] = RETRY_REQUEST
                    changed = True
        for later, earlier in pairs:
            if root_of[later] in kept or earlier in alive or earlier in pruned:
                continue
            kept[root_of[later]] = NEEDED
            changed = True
    return kept


def _streaks(chains: list[Chain]) -> dict[int, str]:
    """Originals in their company's failing streak, and each company's last success."""
    found: dict[int, str] = {}
    companies = {
        pk: (streak, since)
        for pk, streak, since in Company.objects.filter(
            pk__in={chain.root["company_id"] for chain in chains}
        ).values_list("pk", "failing_streak", "failing_since")
    }
    successes = []
    for chain in chains:
        root = chain.root
        streak, since = companies.get(root["company_id"], (0, None))
        if streak and since is not None and root["sync_utc"] >= since:
            found[root["pk"]] = STREAK
        elif _counts_as(root) == Category.SUCCESS:
            successes.append(root["pk"])
    if successes:
        # As `_counts_as` reads it.
        succeeded = Q(chain_category=Category.SUCCESS) | Q(
            chain_category__isnull=True, category=Category.SUCCESS
        )
        newer = Sync.objects.filter(
            succeeded, company_id=OuterRef("company_id"), retry_of__isnull=True
        ).filter(
            Q(sync_utc__gt=OuterRef("sync_utc"))
            | Q(sync_utc=OuterRef("sync_utc"), pk__gt=OuterRef("pk"))
        )
        for pk in (
            Sync.objects.filter(pk__in=successes)
            .filter(~Exists(newer))
            .values_list("pk", flat=True)
        ):
            found[pk] = LAST_SUCCESS
    return found


def _counts_as(row: dict[str, Any]) -> int:
    """An original's place in its company's streak: its chain's category, else its own."""
    return row["category"] if row["chain_category"] is None else row["chain_category"]


# A request, as `keep` reads it: its sync's pk, the syncs its POST named (by
# sync ID, as text), the sync it started, its state and when it was made.
Request = dict[str, Any]
# The requests whose POST named each sync, by sync ID (text).
Named = dict[str, list[Request]]
_REQUEST = ("pk", "sync_id", "sync_ids", "new_sync_id", "state", "created_at")


def named_by_requests() -> Named:
    """Every request that named syncs in its POST, by each sync it named.

    Read once for a run: the list is JSON, which no index reads. A request
    made during the run names only syncs with outstanding items, which stay.
    """
    named: Named = {}
    for row in RetryRequest.objects.values(*_REQUEST).iterator(chunk_size=5000):
        for text in row["sync_ids"] or []:
            named.setdefault(str(text), []).append(row)
    return named


def _requests(chains: list[Chain], named: Named) -> list[Request]:
    """The retry requests that name these syncs, each with the pks of those it names.

    A request names the sync it retries, the syncs its POST named and the sync
    it started.
    """
    pks = {str(row["sync_id"]): row["pk"] for chain in chains for row in chain.syncs}
    sync_ids = [row["sync_id"] for chain in chains for row in chain.syncs]
    found = {
        row["pk"]: row
        for row in RetryRequest.objects.filter(
            Q(sync_id__in=list(pks.values())) | Q(new_sync_id__in=sync_ids)
        ).values(*_REQUEST)
    }
    for text in pks:
        for row in named.get(text, ()):
            found.setdefault(row["pk"], row)
    members = set(pks.values())
    requests = []
    for row in found.values():
        texts = {str(text) for text in row["sync_ids"] or []}
        if row["new_sync_id"] is not None:
            texts.add(str(row["new_sync_id"]))
        names = {pks[text] for text in texts if text in pks}
        if row["sync_id"] in members:
            names.add(row["sync_id"])
        requests.append({**row, "named": names})
    return requests


def remove_syncs(pks: list[int]) -> Counter[str]:
    """Delete these syncs with their items, retry requests and bulk retry members.

    The requests first (they protect their syncs), and the members that name them.
    """
    counts: Counter[str] = Counter()
    requests = list(RetryRequest.objects.filter(sync_id__in=pks).values_list("pk", flat=True))
    # The members, not what goes along with them (a problem's retry: deleted with them).
    counts["bulk retry members"] = (
        BulkMember.objects.filter(Q(sync_id__in=pks) | Q(request_id__in=requests))
        .delete()[1]
        .get(BulkMember._meta.label, 0)
    )
    counts["retry requests"] = RetryRequest.objects.filter(pk__in=requests).delete()[0]
    # The syncs' delete takes their items and states along, a statement each.
    _, by_model = Sync.objects.filter(pk__in=pks).delete()
    counts["syncs"] = by_model.get(Sync._meta.label, 0)
    counts["push items"] = by_model.get(PushItem._meta.label, 0)
    counts["transaction states"] = by_model.get(TransactionState._meta.label, 0)
    return counts


def remove_empty_bulk_retries(before: datetime) -> int:
    """Delete settled bulk retries made before `before` that retention left with nothing."""
    empty = BulkRetry.objects.filter(created_at__lt=before, state__in=SETTLED_BULK_STATES).filter(
        ~Exists(BulkMember.objects.filter(bulk_id=OuterRef("pk"))),
        ~Exists(RetryRequest.objects.filter(bulk_id=OuterRef("pk"))),
    )
    return empty.delete()[0]
