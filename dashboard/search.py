"""Finding IDs wherever they are: a company, a sync or a transaction, by its ID or its start.

A search shaped like an ID (`filters.IdRange`) is a range of UUIDs, read
through each kind's own index: the unique indexes on `Company.company_id`
and `Sync.sync_id`, and `push_item_transaction` on `PushItem.transaction_id`.
Never by text (`company_id::text LIKE '1f6a%'`), which reads every row.
Nothing here looks at the date range: the history applies it to the syncs
and says how many matches it hides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from itertools import groupby

from django.db.models import Q, QuerySet

from .filters import IdRange, id_range
from .models import Company, PushItem, Sync, TransactionState
from .vocabulary import FAILED_ITEM_STATUSES, ItemStatus

# Of each kind of ID, the most a search reads. A prefix of six digits shares
# them with about one sync in 16 million: the cap is for a search that names
# far more than anyone could read, and the page says when it was reached.
MATCH_CAP = 200
# A jump (the header's search) reads an ID from its first 8 digits: one sync in
# four billion shares them, so a prefix copied from a log lands on its sync.
JUMP_PREFIX_MIN = 8
# The companies a name search reads: the history filters by all of them, a
# jump lists the first of them by name.
COMPANY_MATCH_CAP = 2_000
JUMP_LIST_CAP = 50


def _within(column: str, ids: IdRange) -> Q:
    """A whole ID as an equality (which the planner counts exactly), a prefix as a range."""
    if ids.exact:
        return Q(**{column: ids.lower})
    return Q(**{f"{column}__range": (ids.lower, ids.upper)})


def companies_named(q: str) -> QuerySet[Company]:
    """The companies whose name contains the search, any case (unordered, unbounded)."""
    return Company.objects.filter(name__icontains=q)


def companies_in(ids: IdRange) -> QuerySet[Company]:
    return Company.objects.filter(_within("company_id", ids))


def syncs_in(ids: IdRange) -> QuerySet[Sync]:
    return Sync.objects.filter(_within("sync_id", ids))


def pushes_in(ids: IdRange) -> QuerySet[PushItem]:
    return PushItem.objects.filter(_within("transaction_id", ids))


def states_of(transaction_ids: list[uuid.UUID]) -> QuerySet[TransactionState]:
    return TransactionState.objects.filter(transaction_id__in=transaction_ids)


@dataclass(frozen=True)
class Keys:
    """What an ID search selects from the history: these companies' syncs and these syncs."""

    company_pks: list[int]
    sync_pks: list[int]

    @property
    def empty(self) -> bool:
        return not (self.company_pks or self.sync_pks)

    @property
    def condition(self) -> Q:
        """The syncs these keys select, each part on its own index (company, primary key)."""
        if not self.company_pks:
            return Q(pk__in=self.sync_pks)  # none, when both are empty
        if not self.sync_pks:
            return Q(company_id__in=self.company_pks)
        return Q(company_id__in=self.company_pks) | Q(pk__in=self.sync_pks)


def keys(ids: IdRange) -> Keys:
    """The companies and syncs an ID search names, a transaction naming every sync that pushed it.

    Three short index reads; the history then reads syncs by primary key
    and by company, on their own indexes.
    """
    company_pks = list(companies_in(ids).values_list("pk", flat=True)[:MATCH_CAP])
    sync_pks = list(syncs_in(ids).values_list("pk", flat=True)[:MATCH_CAP])
    pushed_by = pushes_in(ids).order_by("transaction_id").values_list("sync_id", flat=True)
    sync_pks += [pk for pk in pushed_by[:MATCH_CAP] if pk not in sync_pks]
    return Keys(company_pks, sync_pks)


@dataclass
class Transaction:
    """One transaction (a company's transaction ID): every push of it and its current state."""

    transaction_id: uuid.UUID
    company: Company
    # Newest first, by the pushing sync's syncUtc, then its ID.
    pushes: list[PushItem]
    # Ingest's record of its current state; None where it has none (a
    # transaction that completed at its first push, or one not yet counted).
    state: TransactionState | None = None

    @property
    def last_sync(self) -> Sync:
        """The sync of its latest push."""
        if self.state is not None:
            return self.state.last_sync
        return self.pushes[0].sync

    @property
    def status(self) -> ItemStatus:
        """Its status in its latest push."""
        if self.state is not None:
            return ItemStatus(self.state.status)
        return ItemStatus(self.pushes[0].status)

    @property
    def outstanding(self) -> bool:
        """Failed, or pending in a sync that has ended: still to be pushed."""
        if self.state is not None:
            return self.state.outstanding
        status = self.status
        return status in FAILED_ITEM_STATUSES or (
            status != ItemStatus.COMPLETED and self.last_sync.is_terminal
        )

    @property
    def standing(self) -> str:
        """Outstanding, Completed, or In progress (pending in a sync still running)."""
        if self.outstanding:
            return "Outstanding"
        if self.status == ItemStatus.COMPLETED:
            return "Completed"
        return "In progress"

    @property
    def verdict(self) -> str:
        """What its latest push did, as the words before that sync's ID."""
        status = self.status
        if status in FAILED_ITEM_STATUSES:
            return "last failed in sync"
        if status == ItemStatus.COMPLETED:
            return "completed in sync"
        if self.outstanding:
            return "left pending in sync"
        return "pending in running sync"


def _newest_first(push: PushItem) -> tuple:
    return (push.sync.sync_utc, push.sync.sync_id)


def _by_transaction(push: PushItem) -> tuple:
    return (push.transaction_id, push.sync.company_id)


def transactions(pushes: QuerySet[PushItem]) -> list[Transaction]:
    """The transactions these pushes belong to, each with its pushes and its current state.

    Three reads, none a join: the pushes (on their transaction index), their
    syncs with their companies (by primary key), the transactions' current
    states. The planner cannot count a range of UUIDs (it guesses a fixed
    share of the table), and a join planned on that guess may read a whole
    table to meet a handful of pushes.
    """
    rows = list(pushes.order_by("transaction_id")[:MATCH_CAP])
    syncs = Sync.objects.select_related("company").in_bulk({push.sync_id for push in rows})
    for push in rows:
        push.sync = syncs[push.sync_id]
    rows.sort(key=_by_transaction)
    found: list[Transaction] = []
    for (transaction_id, _company_pk), group in groupby(rows, key=_by_transaction):
        items = sorted(group, key=_newest_first, reverse=True)
        found.append(Transaction(transaction_id, items[0].sync.company, items))
    if found:
        states = {
            (state.company_id, state.transaction_id): state
            for state in states_of([t.transaction_id for t in found]).select_related("last_sync")
        }
        for transaction in found:
            transaction.state = states.get((transaction.company.pk, transaction.transaction_id))
    return found


def transaction(transaction_id: uuid.UUID) -> list[Transaction]:
    """Every company's transaction with this ID (normally one), for its page."""
    return transactions(PushItem.objects.filter(transaction_id=transaction_id))


@dataclass
class Matches:
    """What an ID search found, whatever the date range: shown above the history."""

    ids: IdRange
    companies: list[Company] = field(default_factory=list)
    syncs: list[Sync] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.companies or self.syncs or self.transactions)

    @property
    def capped(self) -> bool:
        """Whether some kind of ID matched more than the page reads."""
        pushes = sum(len(t.pushes) for t in self.transactions)
        return MATCH_CAP in (len(self.companies), len(self.syncs), pushes)


def matches(ids: IdRange) -> Matches:
    """Each company, sync and transaction whose ID is in the range."""
    return Matches(
        ids,
        companies=list(companies_in(ids).order_by("company_id")[:MATCH_CAP]),
        # The companies by primary key, not joined (see `transactions`).
        syncs=list(syncs_in(ids).prefetch_related("company").order_by("sync_id")[:MATCH_CAP]),
        transactions=transactions(pushes_in(ids)),
    )


def jump_range(q: str) -> IdRange | None:
    """The IDs a jump names: a whole ID or at least `JUMP_PREFIX_MIN` of its digits."""
    ids = id_range(q)
    return ids if ids is not None and len(ids.digits) >= JUMP_PREFIX_MIN else None


@dataclass
class Found:
    """What a jump found: each kind of thing an ID names, or the companies a name names."""

    q: str
    # The IDs searched (None: the search is not shaped like an ID, or too short for one).
    ids: IdRange | None
    # Whether the lists are companies by name (no ID matched, or it was not one).
    by_name: bool
    companies: list[Company] = field(default_factory=list)
    syncs: list[Sync] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    # Whether some kind matched more than the page lists.
    capped: bool = False

    @property
    def count(self) -> int:
        """Things found, a transaction counted once however many companies pushed it."""
        transaction_ids = {t.transaction_id for t in self.transactions}
        return len(self.companies) + len(self.syncs) + len(transaction_ids)


def find(q: str) -> Found:
    """Everything a jump's search names: by ID (or its first 8+ digits), else by company name.

    The same reads as the history's search (`matches`, `companies_named`):
    index ranges for an ID; a search shaped like an ID that names nothing is
    read as a name, as the history does.
    """
    ids = jump_range(q)
    if ids is not None:
        found = matches(ids)
        if not found.empty:
            return Found(
                q,
                ids,
                by_name=False,
                companies=found.companies,
                syncs=found.syncs,
                transactions=found.transactions,
                capped=found.capped,
            )
    named = list(companies_named(q).order_by("name", "company_id")[: JUMP_LIST_CAP + 1])
    return Found(
        q, ids, by_name=True, companies=named[:JUMP_LIST_CAP], capped=len(named) > JUMP_LIST_CAP
    )
