"""A bulk retry of one problem's outstanding items: its preview, frozen from the current state.

A retry names the sync where each outstanding item last failed (the tip of
its chain), and Codat re-pushes every failed item of the syncs named. A
problem's retry asks for exactly the problem's outstanding transactions:

- each member is the original of a retry chain holding some of them, and is
  restricted to those (`BulkMember.transaction_ids`), so its request names
  only the syncs where they last failed (`retry.plan(only=…)`), not the syncs
  where the chain's other items did; one request per chain, so a
  transaction is never named twice;
- the preview counts, per named sync and per problem, the outstanding items
  of other problems those syncs hold (`BulkAlong`): they go along, and the
  person sees them before confirming.

From then on it is a bulk retry like any other: reviewed, confirmed, fanned
out and reported by the rest of this package, never reading the problem again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet, Sum

from ..db import chunked
from ..ingest import state
from ..models import BulkAlong, BulkMember, BulkRetry, Problem, Sync, TransactionState
from ..vocabulary import ACTIVE_RETRY_STATES, IN_PROGRESS_CODES, BulkState, ProblemState
from .draft import BulkRefused

# Causes are long: the description keeps this much of one.
CAUSE_SHOWN = 160
# The problems listed as going along on the preview; the rest are counted.
ALONG_SHOWN = 25


def describe(problem: Problem) -> str:
    """A problem as its bulk retries name it: "Problem #12: 5130 · The account period …"."""
    cause = " ".join(problem.cause.split())
    if len(cause) > CAUSE_SHOWN:
        cause = cause[: CAUSE_SHOWN - 1].rstrip() + "…"
    kind = f" ({problem.data_type})" if problem.data_type else ""
    return f"Problem #{problem.pk}: {problem.status_code}{kind} · {cause}"


def retries_of(problem: Problem) -> QuerySet[BulkRetry]:
    """The bulk retries of a problem, and of the problems merged into it."""
    return BulkRetry.objects.filter(Q(problem=problem) | Q(problem__merged_into=problem))


def under_way(problem: Problem) -> BulkRetry | None:
    """The problem's confirmed bulk retry still making requests, or with some in flight."""
    return (
        retries_of(problem)
        .filter(
            Q(state__in=(BulkState.QUEUED, BulkState.RUNNING))
            | Q(requests__state__in=ACTIVE_RETRY_STATES)
        )
        .order_by("-pk")
        .first()
    )


def open_problem_draft(
    *, user: User, problem: Problem, key: uuid.UUID, limit: int
) -> BulkRetry | None:
    """Freeze the problem's outstanding items as a draft; None when it has none.

    `key` is the token of the form that asked: the same form posted twice (a
    double click) gives back the draft it made. Refused (BulkRefused) for a
    merged problem, while a retry of it is under way, or beyond `limit` chains.
    """
    made = BulkRetry.objects.filter(key=key).first()
    if made is not None:
        return _made_by(made, user, problem)
    if problem.state == ProblemState.MERGED:
        raise BulkRefused(
            f"Problem #{problem.pk} was merged into problem #{problem.merged_into_id}: "
            "retry that problem's outstanding items from its page."
        )
    running = under_way(problem)
    if running is not None:
        raise BulkRefused(
            f"A retry of this problem is under way (bulk retry {running.pk}): let it finish, "
            "then retry what is still outstanding."
        )
    by_tip = tips(problem)
    if not by_tip:
        return None
    tip_rows = _syncs(set(by_tip))
    chains: dict[int, set[int]] = defaultdict(set)
    for pk, row in tip_rows.items():
        chains[row["retry_of_id"] or pk].add(pk)
    if len(chains) > limit:
        raise BulkRefused(
            f"This problem's outstanding items are in more than {limit:,} syncs: retry them in "
            "parts from the history (a company, a shorter range)."
        )
    roots = _syncs(set(chains))
    chains = {root: named for root, named in chains.items() if root in roots}
    frozen = {
        root: set().union(*(by_tip[tip] for tip in chains[root] if tip in tip_rows))
        for root in chains
    }
    along = _along(tip_rows, chains, frozen)
    try:
        with transaction.atomic():
            bulk = BulkRetry.objects.create(
                key=key,
                user=user,
                scope="",
                description=describe(problem),
                problem=problem,
                state=BulkState.DRAFT,
            )
            BulkMember.objects.bulk_create(
                [
                    BulkMember(
                        bulk=bulk,
                        sync_id=root,
                        company_id=roots[root]["company_id"],
                        status_code=roots[root]["status_code"],
                        fingerprint=roots[root]["error_fingerprint"],
                        items=len(frozen[root]),
                        transaction_ids=sorted(str(tid) for tid in frozen[root]),
                        named=sorted(str(tip_rows[tip]["sync_id"]) for tip in chains[root]),
                    )
                    for root in sorted(
                        chains,
                        key=lambda pk: (
                            roots[pk]["status_code"],
                            roots[pk]["error_fingerprint"],
                            pk,
                        ),
                    )
                ],
                batch_size=500,
            )
            members = dict(BulkMember.objects.filter(bulk=bulk).values_list("sync_id", "pk"))
            BulkAlong.objects.bulk_create(
                [
                    BulkAlong(
                        bulk=bulk,
                        member_id=members[root],
                        sync_id=tip,
                        problem_id=other,
                        items=n,
                    )
                    for (root, tip, other), n in sorted(
                        along.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)
                    )
                ],
                batch_size=1000,
            )
    except IntegrityError:
        # The same form, posted twice at once: the other post made it.
        return _made_by(BulkRetry.objects.get(key=key), user, problem)
    return bulk


def _made_by(bulk: BulkRetry, user: User, problem: Problem) -> BulkRetry:
    if bulk.user_id != user.pk or bulk.problem_id != problem.pk:
        raise BulkRefused("This form was already used: reload the problem's page and try again.")
    return bulk


def tips(problem: Problem) -> dict[int, set[uuid.UUID]]:
    """The problem's outstanding transactions, by the sync where each last failed.

    That is the transaction's latest push, unless that push is in a sync still
    running (a retry under way): then its pushes say where it last failed.
    """
    by_tip: dict[int, set[uuid.UUID]] = defaultdict(set)
    running: dict[int, list[uuid.UUID]] = defaultdict(list)
    rows = (
        TransactionState.objects.filter(problem=problem, outstanding=True)
        .order_by()
        .values_list("company_id", "transaction_id", "last_sync_id", "last_sync__status_code")
    )
    for company_pk, tid, sync_pk, code in rows.iterator(chunk_size=2000):
        if code in IN_PROGRESS_CODES:
            running[company_pk].append(tid)
        else:
            by_tip[sync_pk].add(tid)
    for company_pk, tids in running.items():
        for tid, history in state.pushes(company_pk, tids).items():
            cause = state.cause(history)
            if cause is not None:
                by_tip[cause.sync_pk].add(tid)
    return dict(by_tip)


_SYNC_FIELDS = ("pk", "sync_id", "company_id", "retry_of_id", "status_code", "error_fingerprint")


def _syncs(pks: set[int]) -> dict[int, dict]:
    found: dict[int, dict] = {}
    for chunk in chunked(sorted(pks), 1000):
        for row in Sync.objects.filter(pk__in=chunk).values(*_SYNC_FIELDS):
            found[row["pk"]] = row
    return found


AlongKey = tuple[int, int, int | None]  # (member's sync, named sync, problem)


def _along(
    tip_rows: dict[int, dict], chains: dict[int, set[int]], frozen: dict[int, set[uuid.UUID]]
) -> dict[AlongKey, int]:
    """The outstanding items each named sync holds besides its member's own, by problem."""
    root_of = {tip: root for root, named in chains.items() for tip in named}
    others: dict[int, dict[int, set[uuid.UUID]]] = defaultdict(dict)  # company → tip → tids
    for chunk in chunked(sorted(tip_rows), 500):
        for tip, standing in state.standings(chunk).items():
            extra = standing.outstanding - frozen[root_of[tip]]
            if extra:
                others[tip_rows[tip]["company_id"]][tip] = extra
    along: dict[AlongKey, int] = defaultdict(int)
    for company_pk, by_tip in others.items():
        wanted = set().union(*by_tip.values())
        problem_of: dict[uuid.UUID, int | None] = {}
        for chunk in chunked(sorted(wanted), 1000):
            problem_of.update(
                TransactionState.objects.filter(
                    company_id=company_pk, transaction_id__in=chunk
                ).values_list("transaction_id", "problem_id")
            )
        for tip, tids in by_tip.items():
            for tid in tids:
                along[(root_of[tip], tip, problem_of.get(tid))] += 1
    return dict(along)


@dataclass(frozen=True)
class AlongGroup:
    """Items of one other problem that the syncs named (those kept) hold: they go along."""

    problem: Problem | None
    items: int
    syncs: int


@dataclass(frozen=True)
class Along:
    shown: list[AlongGroup]
    problems: int
    items: int
    syncs: int

    @property
    def more(self) -> int:
        return self.problems - len(self.shown)


def along(bulk: BulkRetry) -> Along:
    """What goes along with the members kept, by problem (largest first), as previewed."""
    kept = BulkAlong.objects.filter(bulk=bulk, member__included=True)
    rows = list(
        kept.values("problem_id")
        .annotate(n=Sum("items"), syncs=Count("sync_id", distinct=True))
        .order_by("-n", "problem_id")
    )
    totals = kept.aggregate(n=Sum("items"), syncs=Count("sync_id", distinct=True))
    problems = Problem.objects.in_bulk(
        [row["problem_id"] for row in rows[:ALONG_SHOWN] if row["problem_id"]]
    )
    return Along(
        shown=[
            AlongGroup(problems.get(row["problem_id"]), int(row["n"]), row["syncs"])
            for row in rows[:ALONG_SHOWN]
        ],
        problems=len(rows),
        items=int(totals["n"] or 0),
        syncs=totals["syncs"],
    )


def named_count(bulk: BulkRetry) -> int:
    """How many syncs the requests of the members kept are to name, as previewed."""
    return sum(
        len(named)
        for named in BulkMember.objects.filter(bulk=bulk, included=True).values_list(
            "named", flat=True
        )
    )
