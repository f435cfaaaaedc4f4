"""What people do to a problem, each change recorded as its activity (who, when, what).

Views call these with the acting user after checking the permission
(`dashboard.roles`): triage (assign, note, ticket, ignore, snooze, reopen)
for runners and leads, playbooks and merging for leads; a confirmed bulk
retry of the problem's items records itself (`retried`). Each runs in one
transaction with the problem's row locked, so two people at once, or a
double click, make two consistent changes rather than one lost one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import (
    PlaybookVersion,
    Problem,
    ProblemActivity,
    ProblemCompany,
    Sync,
    TransactionState,
)
from ..vocabulary import ACTIVE_PROBLEM_STATES, ProblemEvent, ProblemState
from . import upkeep

User = AbstractBaseUser | AnonymousUser
NOTE_MAX = 10_000
PLAYBOOK_MAX = 20_000
NOTE_REPEAT_WINDOW = timedelta(minutes=1)


def _record(problem: Problem, user: Any, event: str, text: str = "", **detail: Any) -> None:
    ProblemActivity.objects.create(
        problem=problem,
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")(),
        event=event,
        text=text,
        detail=detail,
    )


def _locked(problem_pk: int) -> Problem:
    return Problem.objects.select_for_update().get(pk=problem_pk)


def _saved(problem: Problem, was: str) -> None:
    """Save a problem whose state a person (or the snooze's end) changed from `was`;
    if it moved in or out of the active states, its companies' open problems are
    counted again once this commits."""
    problem.save()
    if (was in ACTIVE_PROBLEM_STATES) != (problem.state in ACTIVE_PROBLEM_STATES):
        transaction.on_commit(partial(upkeep.count_open_of, problem.pk))


def assign(problem_pk: int, user: Any, assignee: Any | None) -> Problem:
    with transaction.atomic():
        problem = _locked(problem_pk)
        if problem.assignee_id == getattr(assignee, "pk", None):
            return problem
        problem.assignee = assignee
        problem.save(update_fields=["assignee"])
        name = assignee.get_username() if assignee is not None else ""
        _record(problem, user, ProblemEvent.ASSIGNED, name or "Unassigned", assignee=name)
    return problem


def note(problem_pk: int, user: Any, text: str) -> Problem:
    text = (text or "").strip()
    if not text:
        raise ValidationError("Write something for the note.")
    if len(text) > NOTE_MAX:
        raise ValidationError(f"A note is at most {NOTE_MAX:,} characters.")
    with transaction.atomic():
        problem = _locked(problem_pk)
        # A double click (or a form sent again) is one note: the same text by the
        # same person moments ago is the one already recorded.
        latest = (
            ProblemActivity.objects.filter(problem=problem)
            .order_by("-at", "-id")
            .values_list("event", "user_id", "text", "at")
            .first()
        )
        if latest is not None:
            event, author, said, at = latest
            repeated = (event, author, said) == (ProblemEvent.NOTE, getattr(user, "pk", None), text)
            if repeated and timezone.now() - at < NOTE_REPEAT_WINDOW:
                return problem
        _record(problem, user, ProblemEvent.NOTE, text)
    return problem


def set_ticket(problem_pk: int, user: Any, url: str) -> Problem:
    url = (url or "").strip()
    if url and not url.lower().startswith(("https://", "http://")):
        raise ValidationError("A ticket link starts with https:// (or http://).")
    with transaction.atomic():
        problem = _locked(problem_pk)
        if problem.ticket_url == url:
            return problem
        problem.ticket_url = url
        problem.save(update_fields=["ticket_url"])
        _record(problem, user, ProblemEvent.TICKET, url or "Removed")
    return problem


def ignore(problem_pk: int, user: Any, reason: str = "") -> Problem:
    with transaction.atomic():
        problem = _locked(problem_pk)
        if problem.state == ProblemState.IGNORED:
            return problem
        _refuse_merged(problem)
        was = problem.state
        problem.state = ProblemState.IGNORED
        problem.state_changed_at = timezone.now()
        problem.snoozed_until = problem.snooze_until_failures = None
        problem.state_before_snooze = ""
        _saved(problem, was)
        _record(problem, user, ProblemEvent.IGNORED, reason.strip()[:NOTE_MAX])
    return problem


def snooze(
    problem_pk: int, user: Any, *, until: datetime | None = None, more_failures: int | None = None
) -> Problem:
    """Quiet a problem until a date, or until `more_failures` more items are outstanding."""
    if until is None and not more_failures:
        raise ValidationError("Snooze until a date, or until some more items fail.")
    if until is not None and until <= timezone.now():
        raise ValidationError("Snooze until a time in the future.")
    if more_failures is not None and not 1 <= more_failures <= 1_000_000:
        raise ValidationError("Snooze for between 1 and 1,000,000 more failed items.")
    with transaction.atomic():
        problem = _locked(problem_pk)
        _refuse_merged(problem)
        was = problem.state
        if problem.state != ProblemState.SNOOZED:
            problem.state_before_snooze = _underlying(problem)
        problem.state = ProblemState.SNOOZED
        problem.state_changed_at = timezone.now()
        problem.snoozed_until = until
        problem.snooze_until_failures = (
            problem.items_outstanding + more_failures if more_failures else None
        )
        _saved(problem, was)
        detail: dict[str, Any] = {}
        if until is not None:
            detail["until"] = until.isoformat()
        if more_failures:
            detail["more_failures"] = more_failures
        _record(problem, user, ProblemEvent.SNOOZED, **detail)
    return problem


def reopen(problem_pk: int, user: Any) -> Problem:
    """End an ignore or a snooze: back to what the mirror says (open, regressed or resolved)."""
    with transaction.atomic():
        problem = _locked(problem_pk)
        if problem.state not in (ProblemState.IGNORED, ProblemState.SNOOZED):
            return problem
        was = problem.state
        if problem.state == ProblemState.IGNORED:
            problem.state_before_snooze = _underlying(problem)
        upkeep.wake(problem, timezone.now())
        _saved(problem, was)
        _record(problem, user, ProblemEvent.REOPENED, problem.get_state_display())
    return problem


def _underlying(problem: Problem) -> str:
    if problem.items_outstanding + problem.syncs_outstanding == 0:
        return ProblemState.RESOLVED
    if problem.state in (ProblemState.REGRESSED, ProblemState.OPEN):
        return problem.state
    return ProblemState.OPEN


def _refuse_merged(problem: Problem) -> None:
    if problem.state == ProblemState.MERGED:
        raise ValidationError("This problem was merged into another: change that one.")


def wake_due(now: datetime | None = None) -> int:
    """End the snoozes whose date has passed (beat, every few minutes). Returns how many."""
    now = now or timezone.now()
    woken = 0
    due = Problem.objects.filter(state=ProblemState.SNOOZED, snoozed_until__lte=now)
    for pk in due.values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            problem = _locked(pk)
            if problem.state != ProblemState.SNOOZED or not problem.snoozed_until:
                continue
            if problem.snoozed_until > now:
                continue
            upkeep.wake(problem, now)
            _saved(problem, ProblemState.SNOOZED)
            _record(problem, None, ProblemEvent.WOKE, "The snooze's date passed.")
            woken += 1
    return woken


def retried(
    problem_pk: int, user: Any, *, bulk_pk: int, items: int, syncs: int, companies: int
) -> None:
    """Record that someone confirmed a bulk retry of the problem's outstanding items.

    Called by the confirmation, in its transaction: a form confirmed twice records once.
    """
    ProblemActivity.objects.create(
        problem_id=problem_pk,
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")(),
        event=ProblemEvent.RETRY,
        text=f"Bulk retry {bulk_pk}: {items:,} item{'s' * (items != 1)} in "
        f"{syncs:,} sync{'s' * (syncs != 1)} of {companies:,} "
        f"compan{'ies' if companies != 1 else 'y'}",
        detail={"bulk": bulk_pk, "items": items, "syncs": syncs, "companies": companies},
    )


def edit_playbook(problem_pk: int, user: Any, playbook: str, customer_message: str) -> Problem:
    """Save a new version of the playbook and the customer message (the old ones stay)."""
    playbook = (playbook or "").replace("\r\n", "\n").strip()
    customer_message = (customer_message or "").replace("\r\n", "\n").strip()
    if len(playbook) > PLAYBOOK_MAX or len(customer_message) > PLAYBOOK_MAX:
        raise ValidationError(f"A playbook or a message is at most {PLAYBOOK_MAX:,} characters.")
    with transaction.atomic():
        problem = _locked(problem_pk)
        if (problem.playbook, problem.customer_message) == (playbook, customer_message):
            return problem
        problem.playbook = playbook
        problem.customer_message = customer_message
        problem.playbook_version += 1
        problem.save(update_fields=["playbook", "customer_message", "playbook_version"])
        PlaybookVersion.objects.create(
            problem=problem,
            version=problem.playbook_version,
            playbook=playbook,
            customer_message=customer_message,
            edited_by=getattr(user, "get_username", lambda: "")(),
        )
        _record(problem, user, ProblemEvent.PLAYBOOK, f"Version {problem.playbook_version}")
    return problem


def merge(source_pk: int, target_pk: int, user: Any) -> Problem:
    """Make `source` part of `target`: its aliases, items, syncs and shares move over;
    its activity stays where it is, and its page leads to the target.

    The items move company by company under each company's current-state lock,
    so ingest running at the same time keeps the counts exact.
    """
    from ..ingest.state import lock_companies

    if source_pk == target_pk:
        raise ValidationError("A problem cannot be merged into itself.")
    with transaction.atomic():
        source, target = (
            Problem.objects.select_for_update().filter(pk__in=[source_pk, target_pk]).order_by("pk")
        )
        if source.pk != source_pk:
            source, target = target, source
        for problem in (source, target):
            _refuse_merged(problem)
        source.aliases.update(problem=target)
        source.state = ProblemState.MERGED
        source.merged_into = target
        source.state_changed_at = timezone.now()
        source.save()
        if not target.playbook and source.playbook:
            target.playbook, target.customer_message = source.playbook, source.customer_message
            target.save(update_fields=["playbook", "customer_message"])
        _record(source, user, ProblemEvent.MERGED, f"Merged into #{target.pk}", into=target.pk)
        _record(target, user, ProblemEvent.MERGED, f"#{source.pk} merged into it", source=source.pk)
    move_merged(source_pk, lock_companies)
    return Problem.objects.get(pk=target_pk)


def move_merged(source_pk: int, lock_companies: Any = None) -> int:
    """Move a merged problem's items and syncs to the problem it was merged into, company
    by company; returns the companies recounted. Beat runs it again for any left behind."""
    if lock_companies is None:
        from ..ingest.state import lock_companies
    target = Problem.objects.filter(pk=source_pk).values_list("merged_into_id", flat=True).first()
    if target is None:
        return 0
    companies = set(
        ProblemCompany.objects.filter(problem_id=source_pk).values_list("company_id", flat=True)
    ) | set(
        TransactionState.objects.filter(problem_id=source_pk, outstanding=True)
        .order_by()
        .values_list("company_id", flat=True)
        .distinct()
    )
    for company_pk in sorted(companies):
        with transaction.atomic():
            lock_companies([company_pk])
            TransactionState.objects.filter(company_id=company_pk, problem_id=source_pk).update(
                problem_id=target
            )
            Sync.objects.filter(company_id=company_pk, problem_id=source_pk).update(
                problem_id=target
            )
            upkeep.recount([company_pk])
    return len(companies)


def sweep_merged() -> int:
    """Beat: move whatever a worker wrote to a problem while it was being merged."""
    moved = 0
    for pk in Problem.objects.filter(state=ProblemState.MERGED).values_list("pk", flat=True):
        if (
            TransactionState.objects.filter(problem_id=pk, outstanding=True).exists()
            or ProblemCompany.objects.filter(problem_id=pk).exists()
        ):
            moved += move_merged(pk)
    return moved
