"""Current state: each transaction's latest push, and what is still outstanding.

The history says what each sync did; support asks what is still broken. A
transaction (company + transaction ID) can be pushed by an original sync and
by every retry after it. Its *current state* is its latest push, "latest"
meaning the pushing sync's syncUtc, then its sync ID: never the order in
which webhooks and polls happened to bring them in.

- An item a sync left unpushed (failed, or still pending when the sync
  ended) is **outstanding** until a later push of the same transaction
  completes. (An item pending in a sync still running is not: it may
  complete.) A transaction is outstanding while any of its items is.
- A sync's `items_outstanding` counts its own outstanding items.
- A sync that had an item left unpushed and has none outstanding is
  **resolved**: by the push that completed the last of them (for each item,
  the first completing push after it), at that sync's start.
- `chain_category` is what a sync and its retries count as at the sync's own
  place in the timeline: a retry has none (it belongs to its original's), a
  resolved sync counts as a success, any other its category.

Every function here recomputes from the stored push items, so running it
twice, or for webhooks and polls in any order, leaves the same rows. Writers
call `track` in the transaction that wrote the items, under a per-company
lock, so two workers refreshing one company never interleave their upkeep.
"""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..db import chunked
from ..db import state as db_state
from ..db.locks import advisory_locks
from ..models import Company, PushItem, Sync, TransactionState
from ..problems import keys as problem_keys
from ..problems import upkeep as problem_upkeep
from ..vocabulary import FAILED_ITEM_STATUSES, IN_PROGRESS_CODES, Category, ItemStatus

COMPLETED = int(ItemStatus.COMPLETED)
FAILED = frozenset(int(s) for s in FAILED_ITEM_STATUSES)
CHUNK = 1000
# Advisory lock keys for "this company's current state": a fixed high word,
# so they never meet the other locks' constants.
_LOCK_BASE = 0x53_48_00_00_00_00


@dataclass(frozen=True)
class Push:
    """One push of a transaction: which sync, when, and how it came out."""

    sync_pk: int
    sync_id: uuid.UUID
    sync_utc: datetime
    status: int
    sync_ended: bool
    status_code: int = 0
    data_type: str = ""
    fingerprint: str = ""
    sync_fingerprint: str = ""

    @property
    def when(self) -> tuple[datetime, str]:
        """The push's place in time: its sync's syncUtc, then its sync ID."""
        return (self.sync_utc, str(self.sync_id))

    @property
    def order(self) -> tuple[datetime, str, bool]:
        # A tie inside one sync (two integration types): the failed one wins.
        return (self.sync_utc, str(self.sync_id), self.status != COMPLETED)

    @property
    def left_outstanding(self) -> bool:
        """This push failed, or ended still pending."""
        return self.status in FAILED or (self.status != COMPLETED and self.sync_ended)

    @property
    def problem_key(self) -> problem_keys.Key:
        """The problem of this push's failure: its sync's code, its data type, its cause."""
        return problem_keys.key(
            self.status_code, self.data_type, self.fingerprint, self.sync_fingerprint
        )


def _last_completed(history: list[Push]) -> tuple[datetime, str] | None:
    done = [push.when for push in history if push.status == COMPLETED]
    return max(done) if done else None


def _completed_after(history: list[Push], when: tuple[datetime, str]) -> Push | None:
    """The first push after `when` that completed the transaction, if any."""
    later = [p for p in history if p.status == COMPLETED and p.when > when]
    return min(later, key=lambda push: push.when) if later else None


def chain_category(category: int, retry_of_id: int | None, resolved: bool) -> int | None:
    """What a sync and its retries count as at its place in the timeline."""
    if retry_of_id is not None:
        return None
    return int(Category.SUCCESS) if resolved else int(category)


def lock_companies(company_pks: Iterable[int]) -> None:
    """Serialise the current state's upkeep per company (in a fixed order: no deadlock).

    Writers take it before their first write, so that no one holds a row
    another is waiting for while waiting for this lock.
    """
    keys = [_LOCK_BASE + zlib.crc32(str(pk).encode()) for pk in sorted(set(company_pks))]
    if keys:
        advisory_locks(keys)


def track(
    touched: dict[int, tuple[set[uuid.UUID], set[uuid.UUID]]],
    emptied: Iterable[int] = (),
    *,
    locked: bool = False,
) -> None:
    """Bring the current state up to date after items were written.

    `touched` maps a company's pk to (transaction IDs written in a state other
    than completed, or removed; transaction IDs written completed). The first
    are always recomputed; a completed push matters only to a transaction
    that ever failed (it may resolve it, or be what resolved it), so the
    second are looked up first. `emptied` names syncs that lost items: they
    are recounted whatever else changed. Call inside the transaction
    that wrote the items; `locked`: it already holds `lock_companies` for
    every company in `touched`.
    """
    touched = {pk: sets for pk, sets in touched.items() if sets[0] or sets[1]}
    extra = set(emptied)
    if not touched and not extra:
        return
    if not locked:
        lock_companies(touched)
    affected: dict[int, tuple[set[uuid.UUID], dict[uuid.UUID, StateRow]]] = {}
    for company_pk, (open_ids, completed_ids) in touched.items():
        rows = _state_rows(company_pk, open_ids | completed_ids)
        ids = set(open_ids) | (completed_ids & rows.keys())
        if ids:
            affected[company_pk] = (ids, rows)
    recounted: set[int] = set()
    for company_pk, (ids, rows) in affected.items():
        recounted |= recompute(company_pk, ids, rows)
    recount(extra - recounted)


# A company with at most this many transactions in the current state has them
# all read at once; past it, the ones asked about are looked up by ID.
READ_ALL_UP_TO = 5000


# A transaction's current state as stored: (pk, last sync's pk, status, outstanding, problem).
StateRow = tuple[int, int, int, bool, int | None]
_STATE_ROW = ("transaction_id", "pk", "last_sync_id", "status", "outstanding", "problem_id")


def _state_rows(company_pk: int, transaction_ids: set[uuid.UUID]) -> dict[uuid.UUID, StateRow]:
    """The stored state of those of these transactions that have one (they ever failed).

    A completed push matters only to those; the others' rows are what the
    upkeep compares with. Most companies have a few hundred rows, or none
    yet: reading them all costs less than looking up every item of a batch by ID.
    """
    if not transaction_ids:
        return {}
    rows = TransactionState.objects.filter(company_id=company_pk)
    every = list(rows.values_list(*_STATE_ROW)[: READ_ALL_UP_TO + 1])
    if len(every) > READ_ALL_UP_TO:
        every = []
        for chunk in chunked(sorted(transaction_ids), CHUNK):
            every.extend(rows.filter(transaction_id__in=chunk).values_list(*_STATE_ROW))
    return {row[0]: row[1:] for row in every if row[0] in transaction_ids}


def recompute(
    company_pk: int,
    transaction_ids: Iterable[uuid.UUID],
    stored: dict[uuid.UUID, StateRow] | None = None,
) -> set[int]:
    """Recompute these transactions' state from their pushes; returns the syncs recounted.

    Every sync that pushed one of them is recounted, and the company.
    `stored`: their stored states, when the caller read them (`_state_rows`).
    """
    syncs: set[int] = set()
    known: dict[int, dict[uuid.UUID, list[Push]]] = {company_pk: {}}
    for chunk in chunked(sorted(set(transaction_ids)), CHUNK):
        history_of = pushes(company_pk, chunk)
        known[company_pk].update(history_of)
        if stored is None:
            existing = _state_rows(company_pk, set(chunk))
        else:
            existing = {tid: stored[tid] for tid in chunk if tid in stored}
        syncs |= _store_states(company_pk, chunk, history_of, existing)
    recount_syncs(syncs, known)
    recount_companies([company_pk])
    return syncs


def pushes(company_pk: int, transaction_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Push]]:
    """Every push of these transactions by the company's syncs (see `db.state.pushes`)."""
    found: dict[uuid.UUID, list[Push]] = defaultdict(list)
    for chunk in chunked(list(transaction_ids), CHUNK):
        for (
            tid,
            sync_pk,
            sync_id,
            sync_utc,
            status,
            code,
            data_type,
            print_,
            sync_print,
        ) in db_state.pushes(company_pk, chunk):
            found[tid].append(
                Push(
                    sync_pk,
                    sync_id,
                    sync_utc,
                    status,
                    code not in IN_PROGRESS_CODES,
                    code,
                    data_type,
                    print_,
                    sync_print,
                )
            )
    return found


def is_outstanding(history: list[Push]) -> bool:
    """Some push left it unpushed after the last push that completed it."""
    return cause(history) is not None


def cause(history: list[Push]) -> Push | None:
    """The latest push that left it unpushed after the last push that completed it:
    whose failure it is outstanding with (None: it is not outstanding)."""
    done = _last_completed(history)
    left = [p for p in history if p.left_outstanding and (done is None or p.when > done)]
    return max(left, key=lambda push: push.order) if left else None


def _problems(history_of: dict[uuid.UUID, list[Push]]) -> dict[problem_keys.Key, int]:
    """The problem of every outstanding transaction's failure, made for a cause never seen."""
    wanted: dict[problem_keys.Key, tuple[Push, uuid.UUID]] = {}
    for tid, history in history_of.items():
        push = cause(history)
        if push is not None:
            found = wanted.get(push.problem_key)
            if found is None or push.sync_utc < found[0].sync_utc:
                wanted[push.problem_key] = (push, tid)
    if not wanted:
        return {}

    def example(key: problem_keys.Key) -> str:
        push, tid = wanted[key]
        message = (
            PushItem.objects.filter(sync_id=push.sync_pk, transaction_id=tid)
            .exclude(message=None)
            .exclude(message="")
            .values_list("message", flat=True)
            .first()
        )
        if message:
            return message
        row = Sync.objects.filter(pk=push.sync_pk).values_list("error_message", "exception_message")
        return next((m or e for m, e in row), "")

    return problem_keys.problems_for(
        wanted, example, {k: push.sync_utc for k, (push, _) in wanted.items()}
    )


def _store_states(
    company_pk: int,
    transaction_ids: list[uuid.UUID],
    history_of: dict[uuid.UUID, list[Push]],
    existing: dict[uuid.UUID, StateRow],
) -> set[int]:
    now = timezone.now()
    changed: list[TransactionState] = []
    syncs: set[int] = set()
    problems = _problems({tid: history_of[tid] for tid in transaction_ids if tid in history_of})
    for tid in transaction_ids:
        history = history_of.get(tid)
        old = existing.get(tid)
        if not history:
            if old is not None:
                TransactionState.objects.filter(pk=old[0]).delete()
                syncs.add(old[1])
            continue
        if old is None and not any(p.left_outstanding for p in history):
            # Never left unpushed (completed, or pending in a sync still running):
            # nothing to resolve, no row needed.
            continue
        syncs.update(p.sync_pk for p in history)
        latest = max(history, key=lambda push: push.order)
        failure = cause(history)
        outstanding = failure is not None
        problem = problems[failure.problem_key] if failure is not None else None
        if old is not None and old[1:] == (latest.sync_pk, latest.status, outstanding, problem):
            continue
        changed.append(
            TransactionState(
                company_id=company_pk,
                transaction_id=tid,
                last_sync_id=latest.sync_pk,
                last_sync_utc=latest.sync_utc,
                status=latest.status,
                outstanding=outstanding,
                problem_id=problem,
                updated=now,
            )
        )
    if changed:
        TransactionState.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["company", "transaction_id"],
            update_fields=[
                "last_sync",
                "last_sync_utc",
                "status",
                "outstanding",
                "problem",
                "updated",
            ],
        )
    return syncs


@dataclass
class Standing:
    """A sync's items now: which are outstanding, and the pushes that resolved the others."""

    had_outstanding: bool = False
    outstanding: set[uuid.UUID] = field(default_factory=set)
    resolvers: list[Push] = field(default_factory=list)

    @property
    def resolver(self) -> Push | None:
        """The push that completed the last of its items left unpushed, once none is left."""
        if not self.had_outstanding or self.outstanding or not self.resolvers:
            return None
        return max(self.resolvers, key=lambda push: push.when)


# What `standings` reads of each sync, and `_recount_chunk` besides.
_STANDING_FIELDS = ("pk", "company_id", "sync_id", "sync_utc", "status_code")
_COUNTED_FIELDS = (
    "category",
    "retry_of_id",
    "items_outstanding",
    "resolved_at",
    "resolved_by_id",
    "chain_category",
)


def standings(
    sync_pks: list[int],
    known: dict[int, dict[uuid.UUID, list[Push]]] | None = None,
    rows: dict[int, dict] | None = None,
) -> dict[int, Standing]:
    """Each sync's items, item by item: one it left unpushed (failed, or pending when the
    sync ended) is outstanding until a later push of its transaction completes.

    `rows`: the syncs' `_STANDING_FIELDS` by pk, when the caller read them already.
    """
    known = known if known is not None else {}
    if rows is None:
        rows = {
            row["pk"]: row for row in Sync.objects.filter(pk__in=sync_pks).values(*_STANDING_FIELDS)
        }
    unfinished: list[tuple[int, uuid.UUID, int]] = list(
        PushItem.objects.filter(sync_id__in=sync_pks)
        .exclude(status=COMPLETED)
        .values_list("sync_id", "transaction_id", "status")
    )
    wanted: dict[int, set[uuid.UUID]] = defaultdict(set)
    for sync_pk, tid, _ in unfinished:
        company_pk = rows[sync_pk]["company_id"]
        if tid not in known.get(company_pk, {}):
            wanted[company_pk].add(tid)
    for company_pk, tids in wanted.items():
        known.setdefault(company_pk, {}).update(pushes(company_pk, sorted(tids)))
    result = {pk: Standing() for pk in rows}
    for sync_pk, tid, status in unfinished:
        row = rows[sync_pk]
        ended = row["status_code"] not in IN_PROGRESS_CODES
        if not (status in FAILED or ended):
            continue  # pending in a sync still running: it may yet complete
        standing = result[sync_pk]
        standing.had_outstanding = True
        history = known.get(row["company_id"], {}).get(tid, [])
        resolver = _completed_after(history, (row["sync_utc"], str(row["sync_id"])))
        if resolver is None:
            standing.outstanding.add(tid)
        else:
            standing.resolvers.append(resolver)
    return result


def recount_syncs(
    sync_pks: Iterable[int], known: dict[int, dict[uuid.UUID, list[Push]]] | None = None
) -> int:
    """Each sync's outstanding items, resolution and chain category, from the pushes.

    Returns how many syncs changed.
    """
    changed = 0
    for chunk in chunked(sorted(set(sync_pks)), CHUNK):
        changed += _recount_chunk(chunk, known)
    return changed


def _recount_chunk(
    sync_pks: list[int], known: dict[int, dict[uuid.UUID, list[Push]]] | None
) -> int:
    rows = {
        row["pk"]: row
        for row in Sync.objects.filter(pk__in=sync_pks).values(*_STANDING_FIELDS, *_COUNTED_FIELDS)
    }
    found = standings(sync_pks, known, rows)
    changed: list[Sync] = []
    for pk, row in rows.items():
        standing = found.get(pk, Standing())
        resolver = standing.resolver
        values = (
            len(standing.outstanding),
            resolver.sync_utc if resolver else None,
            resolver.sync_pk if resolver else None,
            chain_category(row["category"], row["retry_of_id"], resolver is not None),
        )
        if values == tuple(row[name] for name in _COUNTED_FIELDS[2:]):
            continue
        changed.append(
            Sync(
                pk=pk,
                items_outstanding=values[0],
                resolved_at=values[1],
                resolved_by_id=values[2],
                chain_category=values[3],
            )
        )
    if changed:
        Sync.objects.bulk_update(
            changed,
            ["items_outstanding", "resolved_at", "resolved_by", "chain_category"],
            batch_size=500,
        )
    return len(changed)


def recount_companies(company_pks: Iterable[int]) -> None:
    """Each company's outstanding transactions and outstanding original syncs."""
    pks = sorted(set(company_pks))
    if not pks:
        return
    items = (
        TransactionState.objects.filter(company_id=OuterRef("pk"), outstanding=True)
        .order_by()
        .values("company_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    syncs = (
        Sync.objects.filter(
            company_id=OuterRef("pk"), items_outstanding__gt=0, retry_of__isnull=True
        )
        .order_by()
        .values("company_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    for chunk in chunked(pks, CHUNK):
        Company.objects.filter(pk__in=chunk).update(
            items_outstanding=Coalesce(Subquery(items), 0),
            syncs_outstanding=Coalesce(Subquery(syncs), 0),
        )
    problem_upkeep.recount(pks)


def recount(sync_pks: Iterable[int]) -> None:
    """Recount these syncs and their companies: after a sync's retry link changed, or
    it lost an item, without any of its transactions' pushes changing."""
    pks = set(sync_pks)
    if not pks:
        return
    recount_syncs(pks)
    recount_companies(Sync.objects.filter(pk__in=list(pks)).values_list("company_id", flat=True))


def build_company(company_pk: int) -> tuple[int, int]:
    """Build one company's current state from its history, in one transaction.

    Every original sync first counts as its own category; then each
    transaction that was ever pushed without completing is recomputed, which
    resolves what later pushes completed. Returns (transactions, syncs changed).
    Safe to run again: it recomputes the same rows.
    """
    with transaction.atomic():
        lock_companies([company_pk])
        Sync.objects.filter(company_id=company_pk, retry_of__isnull=False).exclude(
            chain_category=None
        ).update(chain_category=None)
        Sync.objects.filter(company_id=company_pk, retry_of__isnull=True).exclude(
            chain_category=F("category")
        ).filter(resolved_at__isnull=True).update(chain_category=F("category"))
        unfinished = (
            PushItem.objects.filter(sync__company_id=company_pk)
            .exclude(status=COMPLETED)
            .order_by()
            .values_list("transaction_id", flat=True)
            .distinct()
        )
        ids = set(unfinished) | set(
            TransactionState.objects.filter(company_id=company_pk).values_list(
                "transaction_id", flat=True
            )
        )
        if ids:
            syncs = recompute(company_pk, ids)  # recounts the company too
        else:
            syncs = set()
            recount_companies([company_pk])
        Company.objects.filter(pk=company_pk).update(state_built_at=timezone.now())
    return len(ids), len(syncs)


def companies_to_build(*, rebuild: bool = False) -> list[int]:
    """The companies whose current state was never built (all of them with `rebuild`)."""
    companies = Company.objects.order_by("pk")
    if not rebuild:
        companies = companies.filter(state_built_at__isnull=True)
    return list(companies.values_list("pk", flat=True))
