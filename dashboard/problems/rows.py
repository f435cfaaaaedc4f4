"""Which problem each row of a page belongs to, and how the pages name it.

Reads only, bounded by the rows one page shows, and by index:

- `causes`: the history's cause column. A sync with outstanding items shows
  their problems, most items first: an item is outstanding at the tip of its
  retry chain (`TransactionState.last_sync`), so an original's are read at
  itself and at its retries (a chain is an original and every sync whose
  `retry_of` is it), through the partial index of outstanding tips. A failed
  sync without items shows its own problem (`Sync.problem`); any other, its
  error message, cause first.
- `item_problems`: the group of each push item on a sync's page, and of each
  push the item search lists: the problem its transaction is outstanding
  with, where this push is the one it last failed in; else the problem its
  failure's key names (`keys.key`), if any problem has that key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.db.models import Count, Q
from django.urls import get_script_prefix, get_urlconf, reverse

from .. import fingerprint
from ..models import Problem, PushItem, Sync, TransactionState
from ..vocabulary import FAILED_ITEM_STATUSES
from . import keys

# How much of a cause a list shows; the rest is in its title, or one click away.
CAUSE_LIMIT = 140
# How much of a message a title attribute carries.
TITLE_LIMIT = 2000
FAILED = frozenset(int(s) for s in FAILED_ITEM_STATUSES)


def headline(message: str | None, limit: int = CAUSE_LIMIT) -> str:
    """The message's cause (Codat's wrapper taken off), cut to `limit` characters."""
    return fingerprint.headline(message, limit)


@cache
def _problem_route(prefix: str, urlconf: str | None) -> tuple[str, str]:
    """The problem's URL around its number, reversed once (a page links many problems)."""
    marker = 987654321
    url = reverse("problem-detail", args=[marker], urlconf=urlconf)
    head, tail = url.split(str(marker), 1)
    return head, tail


def problem_url(pk: int) -> str:
    """The problem's page."""
    head, tail = _problem_route(get_script_prefix(), get_urlconf())
    return f"{head}{int(pk)}{tail}"


@dataclass(frozen=True)
class ProblemRef:
    """A problem as a row names it: its number and its cause."""

    pk: int
    cause: str

    @property
    def label(self) -> str:
        return f"Problem #{self.pk}"

    @property
    def url(self) -> str:
        return problem_url(self.pk)

    @property
    def headline(self) -> str:
        return headline(self.cause)


def problems(pks: Iterable[int | None]) -> dict[int, ProblemRef]:
    """These problems, by primary key (one query; none for no problem)."""
    wanted = {pk for pk in pks if pk is not None}
    if not wanted:
        return {}
    return {
        pk: ProblemRef(pk, cause)
        for pk, cause in Problem.objects.filter(pk__in=wanted).values_list("pk", "cause")
    }


@dataclass(frozen=True)
class Cause:
    """What a history row shows as the cause of its failure."""

    # Its outstanding items' problems, most items first, with their counts.
    problems: tuple[tuple[ProblemRef, int], ...] = ()
    # Else its error message, as it came.
    message: str = ""

    @property
    def problem(self) -> ProblemRef | None:
        return self.problems[0][0] if self.problems else None

    @property
    def others(self) -> list[ProblemRef]:
        return [ref for ref, _ in self.problems[1:]]

    @property
    def text(self) -> str:
        """The cause in words (the CSV's): its problem and cause, else its message's cause."""
        if self.problem is None:
            return headline(self.message, TITLE_LIMIT)
        more = f" (+{len(self.others)} more)" if self.others else ""
        return f"{self.problem.label}: {headline(self.problem.cause, TITLE_LIMIT)}{more}"


NO_CAUSE = Cause()


class CauseRow(Protocol):
    """What `causes` reads of a row: a history row or a sync."""

    @property
    def pk(self) -> int: ...
    @property
    def retry_of_id(self) -> int | None: ...
    @property
    def items_outstanding(self) -> int: ...
    @property
    def problem_id(self) -> int | None: ...
    @property
    def error_message(self) -> str: ...
    @property
    def exception_message(self) -> str: ...


def outstanding_problems(rows: Sequence[CauseRow]) -> dict[int, dict[int, int]]:
    """{row's pk: {problem: outstanding items}} of the rows with outstanding items.

    One query: the outstanding tips at the rows and at the retries of the
    originals among them, counted per tip and problem.
    """
    wanted = [row for row in rows if row.items_outstanding]
    if not wanted:
        return {}
    pks = {row.pk for row in wanted}
    originals = sorted(row.pk for row in wanted if row.retry_of_id is None)
    tips = Sync.objects.filter(Q(pk__in=sorted(pks)) | Q(retry_of_id__in=originals)).values("pk")
    counted = (
        TransactionState.objects.filter(
            outstanding=True, problem__isnull=False, last_sync_id__in=tips
        )
        .values_list("last_sync_id", "last_sync__retry_of_id", "problem_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    found: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for tip, root, problem, n in counted:
        if tip in pks:
            found[tip][problem] += n
        if root is not None and root in pks and root != tip:
            found[root][problem] += n
    return found


def causes(rows: Sequence[CauseRow]) -> dict[int, Cause]:
    """Each row's cause, by its pk: two queries for a page, whatever its size."""
    counts = outstanding_problems(rows)
    refs = problems(
        [pk for found in counts.values() for pk in found] + [row.problem_id for row in rows]
    )
    result: dict[int, Cause] = {}
    for row in rows:
        found = [
            (refs[pk], n)
            for pk, n in sorted(counts.get(row.pk, {}).items(), key=lambda kv: (-kv[1], kv[0]))
            if pk in refs
        ]
        own = refs.get(row.problem_id) if row.problem_id is not None else None
        if not found and own is not None:
            found = [(own, 1)]
        message = row.error_message or row.exception_message
        if found or message:
            result[row.pk] = Cause(tuple(found), "" if found else message)
    return result


def item_problems(sync: Sync, items: Sequence[PushItem]) -> dict[int, ProblemRef]:
    """The group of each of a sync's items, by the item's pk (two or three queries).

    The problem its transaction is outstanding with, where this sync is the
    one it last failed in; else, for a failed item, the problem of its key.
    """
    return pushes_problems([(sync, item) for item in items])


def pushes_problems(pushes: Sequence[tuple[Sync, PushItem]]) -> dict[int, ProblemRef]:
    """`item_problems` for pushes of any syncs and companies: (its sync, the item)."""
    if not pushes:
        return {}
    by_item: dict[int, int] = {}
    tids = sorted({item.transaction_id for _, item in pushes})
    tips = {
        (last_sync, tid): problem
        for last_sync, tid, problem in TransactionState.objects.filter(
            transaction_id__in=tids, outstanding=True, problem__isnull=False
        ).values_list("last_sync_id", "transaction_id", "problem_id")
    }
    wanted: dict[int, keys.Key] = {}
    for sync, item in pushes:
        problem = tips.get((sync.pk, item.transaction_id))
        if problem is not None:
            by_item[item.pk] = problem
        elif item.status in FAILED:
            wanted[item.pk] = keys.key(
                sync.status_code, item.data_type, item.fingerprint, sync.error_fingerprint
            )
    named = keys.known(set(wanted.values()))
    for item_pk, key in wanted.items():
        if key in named:
            by_item[item_pk] = named[key]
    refs = problems(by_item.values())
    return {item_pk: refs[pk] for item_pk, pk in by_item.items() if pk in refs}
