"""Each company's share of each problem, and the problems' counts and automatic states.

Called by the current state's upkeep (`dashboard.ingest.state`) in the
transaction that changed a company's transactions, under that company's
lock, and after a refresh recounted the company's failing streak. It reads
only that company's outstanding rows (a partial index), compares them with
the company's stored shares (`ProblemCompany`), and applies the difference
to the problems: so a problem's counts are always the sum of its shares,
and no page view ever scans the history.

What counts, per company:

- each outstanding transaction, in the problem of the push that left it
  unpushed (`TransactionState.problem`), at that push's sync's start;
- each failed sync without items in the company's current failing streak
  (`Sync.problem`): it is outstanding until the company syncs successfully.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from alerts import triggers

from ..db import chunked
from ..models import Company, Problem, ProblemActivity, ProblemCompany, Sync, TransactionState
from ..vocabulary import ACTIVE_PROBLEM_STATES, Category, ProblemEvent, ProblemState
from . import keys

# The trend's length, in UTC days, today included.
TREND_DAYS = 14


@dataclass
class Share:
    """One company's outstanding part of one problem."""

    items: int = 0
    syncs: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    days: dict[str, int] = field(default_factory=dict)

    def add_seen(self, first: datetime, last: datetime) -> None:
        self.first_seen = first if self.first_seen is None else min(self.first_seen, first)
        self.last_seen = last if self.last_seen is None else max(self.last_seen, last)

    def counts(self) -> tuple[int, int, dict[str, int]]:
        return (self.items, self.syncs, self.days)


@dataclass
class Delta:
    """How one problem's counts change."""

    items: int = 0
    syncs: int = 0
    companies: int = 0
    # A company gained or lost its share (the count alone misses one of each).
    members: bool = False
    days: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    platforms: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first_seen: datetime | None = None
    last_seen: datetime | None = None


def trend_start(now: datetime | None = None) -> date:
    return (now or timezone.now()).date() - timedelta(days=TREND_DAYS - 1)


def shares(company: Company) -> dict[int, Share]:
    """The company's outstanding share of each problem, counted from its rows now."""
    found: dict[int, Share] = defaultdict(Share)
    # Only the company and `outstanding` in the condition: the company's partial
    # index of outstanding rows answers it whatever the statistics say. With
    # `problem_id IS NOT NULL` too, statistics taken while no row had a problem
    # (an estate before its backfill) send PostgreSQL to the problems' index,
    # through every grouped row of every company.
    open_states = TransactionState.objects.filter(
        company_id=company.pk, outstanding=True
    ).order_by()
    start = trend_start()
    # One row per problem and sync (a sync's items share its start, so its day):
    # the counts, the distinct syncs, first and last seen and the trend's days at once.
    syncs: dict[int, set[int]] = defaultdict(set)
    for problem, sync, day, n, first, last in (
        open_states.values("problem_id", "last_sync_id", day=TruncDate("last_sync_utc"))
        .annotate(n=Count("*"), first=Min("last_sync_utc"), last=Max("last_sync_utc"))
        .values_list("problem_id", "last_sync_id", "day", "n", "first", "last")
    ):
        if problem is None:
            continue  # not grouped yet: the backfill gives it its problem
        share = found[problem]
        share.items += n
        syncs[problem].add(sync)
        share.add_seen(first, last)
        if day >= start:
            share.days[day.isoformat()] = share.days.get(day.isoformat(), 0) + n
    for problem, ids in syncs.items():
        found[problem].syncs += len(ids)
    for problem, sync_utc in _streak_failures(company):
        share = found[problem]
        share.syncs += 1
        share.add_seen(sync_utc, sync_utc)
        day = sync_utc.date()
        if day >= start:
            share.days[day.isoformat()] = share.days.get(day.isoformat(), 0) + 1
    return dict(found)


def _streak_failures(company: Company) -> list[tuple[int, datetime]]:
    """(problem, start) of each failed sync without items in the company's failing streak.

    One without a problem yet is given one here: the mirror sees it first in a refresh.
    """
    if not company.failing_streak or company.failing_since is None:
        return []
    rows = list(
        Sync.objects.filter(
            company_id=company.pk,
            sync_utc__gte=company.failing_since,
            category=Category.FAILED,
            items_total=0,
        ).values_list("pk", "problem_id", "status_code", "error_fingerprint", "sync_utc")
    )
    unassigned = {
        keys.key(code, "", "", fingerprint): utc
        for _, problem, code, fingerprint, utc in rows
        if problem is None
    }
    if unassigned:
        messages = {
            keys.key(code, "", "", fingerprint): message or exception
            for code, fingerprint, message, exception in Sync.objects.filter(
                pk__in=[pk for pk, problem, *_ in rows if problem is None]
            ).values_list("status_code", "error_fingerprint", "error_message", "exception_message")
        }
        found = keys.problems_for(unassigned, lambda k: messages.get(k, ""), unassigned)
        by_problem: dict[int, list[int]] = defaultdict(list)
        for pk, problem, code, fingerprint, _ in rows:
            if problem is None:
                by_problem[found[keys.key(code, "", "", fingerprint)]].append(pk)
        for problem_pk, pks in by_problem.items():
            Sync.objects.filter(pk__in=pks).update(problem_id=problem_pk)
        rows = [
            (pk, problem or found[keys.key(code, "", "", fp)], code, fp, utc)
            for pk, problem, code, fp, utc in rows
        ]
    return [(problem, utc) for _, problem, _, _, utc in rows]


def recount(company_pks: Iterable[int]) -> None:
    """Bring these companies' shares, and the problems they touch, up to date.

    Call inside the transaction, holding the companies' current-state locks.
    """
    pks = sorted(set(company_pks))
    if not pks:
        return
    deltas: dict[int, Delta] = defaultdict(Delta)
    with transaction.atomic():
        for chunk in chunked(pks, 500):
            _recount_chunk(chunk, deltas)
        apply(deltas)
        # After `apply`, which locked the problems whose shares changed: a person
        # changing one of them has committed, or will recount these companies
        # after this transaction (`count_open_of`).
        count_open(pks)


def _recount_chunk(chunk: list[int], deltas: dict[int, Delta]) -> None:
    companies = Company.objects.filter(pk__in=chunk).only(
        "pk", "failing_streak", "failing_since", "platform_name"
    )
    stored: dict[int, dict[int, ProblemCompany]] = defaultdict(dict)
    for row in ProblemCompany.objects.filter(company_id__in=chunk):
        stored[row.company_id][row.problem_id] = row
    for company in companies:
        _recount_company(company, stored.get(company.pk, {}), deltas)


def _recount_company(
    company: Company, stored: dict[int, ProblemCompany], deltas: dict[int, Delta]
) -> None:
    now_shares = shares(company)
    platform = company.platform_name or "Unknown"
    write: list[ProblemCompany] = []
    for problem, share in now_shares.items():
        old = stored.get(problem)
        if (
            old is not None
            and (old.items, old.syncs, old.days) == share.counts()
            and (
                old.first_seen,
                old.last_seen,
            )
            == (share.first_seen, share.last_seen)
        ):
            continue
        delta = deltas[problem]
        delta.items += share.items - (old.items if old else 0)
        delta.syncs += share.syncs - (old.syncs if old else 0)
        for day, n in share.days.items():
            delta.days[day] += n
        if old is None:
            delta.companies += 1
            delta.members = True
            delta.platforms[platform] += 1
        else:
            for day, n in old.days.items():
                delta.days[day] -= n
        assert share.first_seen is not None and share.last_seen is not None
        delta.first_seen = (
            share.first_seen
            if delta.first_seen is None
            else min(delta.first_seen, share.first_seen)
        )
        delta.last_seen = (
            share.last_seen if delta.last_seen is None else max(delta.last_seen, share.last_seen)
        )
        write.append(
            ProblemCompany(
                problem_id=problem,
                company_id=company.pk,
                items=share.items,
                syncs=share.syncs,
                first_seen=share.first_seen,
                last_seen=share.last_seen,
                days=share.days,
            )
        )
    gone = [row for problem, row in stored.items() if problem not in now_shares]
    for row in gone:
        delta = deltas[row.problem_id]
        delta.items -= row.items
        delta.syncs -= row.syncs
        delta.companies -= 1
        delta.members = True
        delta.platforms[platform] -= 1
        for day, n in row.days.items():
            delta.days[day] -= n
    if gone:
        ProblemCompany.objects.filter(pk__in=[row.pk for row in gone]).delete()
    if write:
        ProblemCompany.objects.bulk_create(
            write,
            update_conflicts=True,
            unique_fields=["problem", "company"],
            update_fields=["items", "syncs", "first_seen", "last_seen", "days"],
        )


# What `apply` writes of a problem.
WRITTEN = [
    "items_outstanding",
    "syncs_outstanding",
    "companies_outstanding",
    "companies_version",
    "trend",
    "platforms",
    "first_seen",
    "last_seen",
    "state",
    "state_changed_at",
    "resolved_at",
    "regressed_at",
    "snoozed_until",
    "snooze_until_failures",
    "state_before_snooze",
]


def apply(deltas: dict[int, Delta]) -> None:
    """Add the changes to the problems (locked in order of ID: no deadlock), and move
    each to resolved, regressed or awake when its counts say so."""
    deltas = {pk: d for pk, d in deltas.items() if _changes(d)}
    if not deltas:
        return
    now = timezone.now()
    start = trend_start(now).isoformat()
    changed: list[Problem] = []
    events: list[ProblemActivity] = []
    problems = Problem.objects.select_for_update().filter(pk__in=sorted(deltas)).order_by("pk")
    for problem in problems:
        delta = deltas[problem.pk]
        was_outstanding = problem.items_outstanding + problem.syncs_outstanding > 0
        problem.items_outstanding = max(0, problem.items_outstanding + delta.items)
        problem.syncs_outstanding = max(0, problem.syncs_outstanding + delta.syncs)
        problem.companies_outstanding = max(0, problem.companies_outstanding + delta.companies)
        if delta.members:
            problem.companies_version += 1
        problem.trend = _add(problem.trend, delta.days, start)
        problem.platforms = _add(problem.platforms, delta.platforms)
        if delta.first_seen is not None:
            problem.first_seen = min(problem.first_seen, delta.first_seen)
        if delta.last_seen is not None:
            problem.last_seen = max(problem.last_seen, delta.last_seen)
        outstanding = problem.items_outstanding + problem.syncs_outstanding > 0
        event = transition(problem, was_outstanding, outstanding, now)
        if event == ProblemEvent.WOKE:
            # Open again for every company with a share, not only these.
            transaction.on_commit(partial(count_open_of, problem.pk))
        if event is not None:
            events.append(
                ProblemActivity(problem=problem, at=now, event=event, detail=_counts(problem))
            )
        changed.append(problem)
    # An upsert keyed by the primary key writes the rows locked above (so it
    # always takes its update branch) from one array per column; bulk_update
    # builds a CASE per column and row, which cost 6 ms a problem in Python.
    Problem.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["id"], update_fields=WRITTEN
    )
    if events:
        ProblemActivity.objects.bulk_create(events)
    # New, grown, shrunk, resolved or regressed: the problems' alerts may move.
    triggers.changed(triggers.PROBLEMS)


def _changes(delta: Delta) -> bool:
    return bool(
        delta.items
        or delta.syncs
        or delta.companies
        or delta.members
        or any(delta.days.values())
        or any(delta.platforms.values())
        or delta.first_seen
        or delta.last_seen
    )


def _add(counts: dict[str, int], delta: dict[str, int], since: str = "") -> dict[str, int]:
    result = dict(counts or {})
    for name, n in delta.items():
        result[name] = result.get(name, 0) + n
    return {k: v for k, v in sorted(result.items()) if v > 0 and k >= since}


def _counts(problem: Problem) -> dict[str, int]:
    return {
        "items": problem.items_outstanding,
        "syncs": problem.syncs_outstanding,
        "companies": problem.companies_outstanding,
    }


def transition(
    problem: Problem, was_outstanding: bool, outstanding: bool, now: datetime
) -> str | None:
    """The automatic state change, if any: the event to record.

    Resolved when nothing in it is outstanding any more; regressed when it
    fails again after that; a snooze ends when its items reach its count.
    Ignored stays ignored, and a snoozed problem stays snoozed (its state
    underneath still follows), until a person or the snooze's end says otherwise.
    """
    if problem.state == ProblemState.SNOOZED:
        if outstanding != was_outstanding:
            if outstanding and problem.state_before_snooze == ProblemState.RESOLVED:
                # It came back while snoozed: it wakes as regressed, since now.
                problem.state_before_snooze = ProblemState.REGRESSED
                problem.regressed_at = now
            elif outstanding:
                problem.state_before_snooze = ProblemState.OPEN
            else:
                problem.state_before_snooze = ProblemState.RESOLVED
                problem.resolved_at = now
        if (
            problem.snooze_until_failures is not None
            and problem.items_outstanding >= problem.snooze_until_failures
        ):
            wake(problem, now)
            return ProblemEvent.WOKE
        return None
    if problem.state in ACTIVE_PROBLEM_STATES and was_outstanding and not outstanding:
        problem.state = ProblemState.RESOLVED
        problem.state_changed_at = problem.resolved_at = now
        return ProblemEvent.RESOLVED
    if problem.state == ProblemState.RESOLVED and outstanding and not was_outstanding:
        problem.state = ProblemState.REGRESSED
        problem.state_changed_at = problem.regressed_at = now
        return ProblemEvent.REGRESSED
    return None


def wake(problem: Problem, now: datetime) -> None:
    """End a snooze: back to what the problem is underneath (open, regressed, resolved)."""
    outstanding = problem.items_outstanding + problem.syncs_outstanding > 0
    before = problem.state_before_snooze
    if not outstanding:
        state = ProblemState.RESOLVED
    elif before == ProblemState.REGRESSED:
        state = ProblemState.REGRESSED
    else:
        state = ProblemState.OPEN
    problem.state = state
    problem.state_changed_at = now
    if state == ProblemState.RESOLVED and problem.resolved_at is None:
        problem.resolved_at = now
    problem.snoozed_until = None
    problem.snooze_until_failures = None
    problem.state_before_snooze = ""


def recount_locked(company_pks: Iterable[int]) -> None:
    """`recount` in its own transaction, taking the companies' locks first."""
    from ..ingest.state import lock_companies

    pks = sorted(set(company_pks))
    if not pks:
        return
    with transaction.atomic():
        lock_companies(pks)
        recount(pks)


# --- each company's open problems ---
#
# `Company.problems_open` counts the open or regressed problems in which the
# company has an outstanding share: the Problems page's "N companies
# affected" (and the companies' own pages) read it instead of probing every
# company's shares. It changes when a share comes or goes (`recount`, under
# the company's lock) and when a problem moves in or out of the active
# states: then every company with a share is counted again, under its lock,
# after the change commits (`count_open_of`). The problems' beat repairs
# whatever a process cut short between the two (`reconcile_open`).


def _active_shares(company_pks: Iterable[int] | None = None) -> dict[int, int]:
    shares = ProblemCompany.objects.filter(problem__state__in=ACTIVE_PROBLEM_STATES)
    if company_pks is not None:
        shares = shares.filter(company_id__in=list(company_pks))
    rows = shares.order_by().values("company_id").annotate(n=Count("pk"))
    return dict(rows.values_list("company_id", "n"))


def _store_open(counted: dict[int, int], stored: Iterable[tuple[int, int]]) -> int:
    stale = [
        Company(pk=pk, problems_open=counted.get(pk, 0))
        for pk, was in stored
        if counted.get(pk, 0) != was
    ]
    if stale:
        Company.objects.bulk_update(stale, ["problems_open"])
    return len(stale)


def count_open(company_pks: Iterable[int]) -> int:
    """Count these companies' open problems again; returns how many changed.

    Call holding their current-state locks, in a statement after taking them
    (so it reads whatever the holders before committed).
    """
    changed = 0
    for chunk in chunked(sorted(set(company_pks)), 500):
        stored = Company.objects.filter(pk__in=chunk).values_list("pk", "problems_open")
        changed += _store_open(_active_shares(chunk), stored)
    return changed


def count_open_of(problem_pk: int) -> int:
    """After a problem moved in or out of the active states: count again the open
    problems of every company with a share in it, a batch of companies at a time,
    each under its companies' locks."""
    from ..ingest.state import lock_companies

    companies = sorted(
        ProblemCompany.objects.filter(problem_id=problem_pk).values_list("company_id", flat=True)
    )
    changed = 0
    for chunk in chunked(companies, 200):
        with transaction.atomic():
            lock_companies(chunk)
            changed += count_open(chunk)
    return changed


def reconcile_open() -> int:
    """Beat: repair the companies whose open problems disagree with their shares
    (a process stopped between a problem's change and `count_open_of`)."""
    counted = _active_shares()
    stored = list(Company.objects.filter(problems_open__gt=0).values_list("pk", "problems_open"))
    wrong = {pk for pk, was in stored if counted.get(pk, 0) != was}
    wrong |= {pk for pk, n in counted.items() if n} - {pk for pk, _ in stored}
    if not wrong:
        return 0
    from ..ingest.state import lock_companies

    changed = 0
    for chunk in chunked(sorted(wrong), 200):
        with transaction.atomic():
            lock_companies(chunk)
            changed += count_open(chunk)
    return changed
