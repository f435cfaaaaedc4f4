"""Finding failed items across companies: by transaction ID, or by words of their message.

- A transaction ID, whole or its first `ID_DIGITS_MIN` hex digits, lists
  every push of every transaction it names (`search.transactions`: the
  transaction index, then the syncs by primary key), completed ones too.
- Words list the outstanding items whose message holds them (case
  ignored), newest first. No index serves "contains" on a message, so each
  page examines at most `SCAN` outstanding items, the most recent after the
  page's cursor, through the partial index of outstanding items by time,
  reading each one's latest push by its key; the page says how far back it
  looked and offers the next stretch. A search never reads the push items
  table as a whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery

from . import cursors, search
from .filters import encode_cursor, id_range
from .models import Company, PushItem, Sync, TransactionState
from .problems.rows import ProblemRef, problems, pushes_problems
from .vocabulary import ItemStatus

# A search shorter than this is in nearly every message.
QUERY_MIN = 3
# An ID prefix shorter than this is read as words.
ID_DIGITS_MIN = 8
PAGE_SIZE = 50
# The outstanding items one page of a search by words examines at most.
SCAN = 2000


@dataclass(frozen=True)
class FoundItem:
    """One push a search found: whose, where, how it came out, and its group."""

    company: Company
    sync: Sync
    transaction_id: uuid.UUID
    data_type: str
    status: ItemStatus
    message: str
    # The transaction is outstanding now (its latest push left it unpushed).
    outstanding: bool
    problem: ProblemRef | None = None

    @property
    def status_css(self) -> str:
        return self.status.css


@dataclass
class ItemSearch:
    """One page of a search's results, and what the page can say about it."""

    kind: str  # "id" or "words"
    rows: list[FoundItem] = field(default_factory=list)
    # Words: where the next page starts (None: nothing older is left to examine).
    next_cursor: str | None = None
    # Words: the stretch of outstanding items this page examined, by the time of their
    # latest push: from `newest` (None: now) back to `oldest` (None: the oldest of all).
    newest: datetime | None = None
    oldest: datetime | None = None
    # Words: the page filled up before the stretch ended.
    full: bool = False
    # An ID: whether it is whole (else its first digits), and whether it named more
    # pushes than a page reads.
    exact: bool = False
    capped: bool = False
    # An ID-shaped search that named no transaction, read as words instead.
    not_an_id: bool = False

    @property
    def scan(self) -> int:
        return SCAN


def id_digits(q: str) -> bool:
    """Whether a search is read as a transaction ID (or its first `ID_DIGITS_MIN` digits)."""
    ids = id_range(q)
    return ids is not None and len(ids.digits) >= ID_DIGITS_MIN


def find(q: str, after: tuple[Any, int] | None = None) -> ItemSearch:
    """A page of what `q` finds: pushes of the transaction it names, else outstanding
    items whose message holds it (after the cursor, if any)."""
    if after is None and id_digits(q):
        found = by_transaction(q)
        if found.rows:
            return found
        words = by_message(q)
        words.not_an_id = True
        return words
    return by_message(q, after)


def by_transaction(q: str) -> ItemSearch:
    ids = id_range(q)
    assert ids is not None
    if ids.exact:
        transactions = search.transaction(ids.lower)
    else:
        transactions = search.transactions(search.pushes_in(ids))
    pushes = [(push.sync, push) for t in transactions for push in t.pushes]
    groups = pushes_problems(pushes)
    rows = [
        FoundItem(
            company=t.company,
            sync=push.sync,
            transaction_id=push.transaction_id,
            data_type=push.data_type,
            status=ItemStatus(push.status),
            message=push.message or "",
            outstanding=t.outstanding,
            problem=groups.get(push.pk),
        )
        for t in transactions
        for push in t.pushes
    ]
    return ItemSearch("id", rows, exact=ids.exact, capped=len(rows) >= search.MATCH_CAP)


def _outstanding() -> QuerySet[TransactionState]:
    return TransactionState.objects.filter(outstanding=True)


def _older_than(when: datetime, pk: int) -> Q:
    """Before (when, pk) in newest-first order; the first term bounds the index's range."""
    return cursors.after("last_sync_utc", True, when, pk)


def _not_older_than(when: datetime, pk: int) -> Q:
    return Q(last_sync_utc__gte=when) & (Q(last_sync_utc__gt=when) | Q(pk__gte=pk))


def _latest_push(column: str) -> Subquery:
    """A column of the state's latest push, read by its key (sync, transaction ID)."""
    return Subquery(
        PushItem.objects.filter(
            sync_id=OuterRef("last_sync_id"), transaction_id=OuterRef("transaction_id")
        )
        .order_by()
        .values(column)[:1]
    )


# What a match reads of its state and its latest push.
_MATCH = (
    "pk", "company_id", "last_sync_id", "last_sync_utc", "transaction_id", "status",
    "problem_id", "message", "data_type",
)  # fmt: skip


def by_message(words: str, after: tuple[Any, int] | None = None) -> ItemSearch:
    """Outstanding items whose latest push's message holds `words`, newest first.

    The matches are read without a join: their companies and syncs are read
    by primary key afterwards (the planner cannot tell how many rows a
    "contains" keeps, and a join planned on its guess may scan a table for each).
    """
    stretch = _outstanding().order_by("-last_sync_utc", "-pk")
    if after is not None:
        stretch = stretch.filter(_older_than(*after))
    edge = list(stretch.values_list("last_sync_utc", "pk")[SCAN - 1 : SCAN])
    examined = stretch.filter(_not_older_than(*edge[0])) if edge else stretch
    found = list(
        examined.annotate(message=_latest_push("message"), data_type=_latest_push("data_type"))
        .filter(message__icontains=words)
        .values_list(*_MATCH)[: PAGE_SIZE + 1]
    )
    result = ItemSearch("words", newest=after[0] if after is not None else None)
    result.oldest = edge[0][0] if edge else None
    if len(found) > PAGE_SIZE:
        found = found[:PAGE_SIZE]
        last_utc, last_pk = found[-1][3], found[-1][0]
        result.full = True
        result.oldest = last_utc
        result.next_cursor = encode_cursor(last_utc.isoformat(), last_pk)
    elif edge:
        result.next_cursor = encode_cursor(edge[0][0].isoformat(), edge[0][1])
    companies = Company.objects.in_bulk({row[1] for row in found})
    syncs = Sync.objects.in_bulk({row[2] for row in found})
    named = problems(row[6] for row in found)
    for _pk, company, sync, _utc, tid, status, problem, message, data_type in found:
        syncs[sync].company = companies[company]
        result.rows.append(
            FoundItem(
                company=companies[company],
                sync=syncs[sync],
                transaction_id=tid,
                data_type=data_type or "",
                status=ItemStatus(status),
                message=message or "",
                outstanding=True,
                problem=named.get(problem) if problem is not None else None,
            )
        )
    return result
