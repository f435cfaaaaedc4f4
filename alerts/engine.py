"""The rules' evaluation: what each check finds now, compared with the rule's stored
subject states, and the transitions that makes, recorded exactly once.

A subject moves OK → PENDING when its condition starts holding, PENDING →
FIRING once it has held the rule's hold time (a FIRED transition), FIRING →
RECOVERING when it stops, and RECOVERING → OK once it has been gone the hold
time (a RECOVERED transition). A condition that flaps inside the hold time
goes back where it was and records nothing. With a hold time of 0 a subject
fires, and recovers, at the first evaluation that sees it.

Each rule is evaluated in its own transaction holding the rule's row lock,
and its states are read under that lock: two evaluators at once take turns,
and the second sees what the first recorded. The unique sequence of a
subject's transitions is the backstop (SQLite reads before it locks): a
clash rolls the rule back and it is evaluated once more.

Most evaluations change nothing, so a rule is first read without its lock
(no write, no commit to wait for); only when that reading would change
something is it evaluated again under the lock, from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max, Prefetch, Q
from django.utils import timezone

from dashboard.models import Company

from .conditions import Check, Finding, checks_for
from .models import AlertState, Mute, Rule, Transition
from .vocabulary import SubjectState, TransitionKind

log = logging.getLogger(__name__)

# The fields an evaluation rewrites of a stored state.
STATE_FIELDS = ["label", "state", "since", "sequence", "detail", "updated_at"]
# An evaluation that changes nothing still notes when it ran, at most this often.
NOTE_EVALUATED_EVERY = timedelta(minutes=1)


def evaluate(
    *, events: frozenset[str] | None = None, now: datetime | None = None
) -> list[Transition]:
    """Evaluate every enabled rule whose check these events can move (None: every rule).

    Returns the transitions recorded; each is handed to delivery when its rule's
    transaction commits.
    """
    now = now or timezone.now()
    checks = {check.condition: check for check in checks_for(events)}
    if not checks:
        return []
    mutes = _Mutes(now)
    recorded: list[Transition] = []
    rule_pks = Rule.objects.filter(enabled=True, condition__in=list(checks)).values_list(
        "pk", flat=True
    )
    for rule_pk in list(rule_pks):
        recorded += _evaluate_rule(rule_pk, checks, mutes, now)
    return recorded


def _evaluate_rule(
    rule_pk: int, checks: dict[str, Check], mutes: _Mutes, now: datetime
) -> list[Transition]:
    try:
        if _unchanged(rule_pk, checks, now):
            return []
    except Exception:
        log.exception("alerts: evaluating rule %s failed", rule_pk)
        return []
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _evaluate_locked(rule_pk, checks, mutes, now)
        except IntegrityError:
            # Another evaluator recorded the same change first (SQLite reads before
            # it locks): once more, and this time the states read say so.
            if attempt == 2:
                log.warning("alerts: rule %s clashed twice with another evaluator", rule_pk)
        except Exception:
            # One rule's broken check must not keep every other rule quiet.
            log.exception("alerts: evaluating rule %s failed", rule_pk)
            return []
    return []


def _unchanged(rule_pk: int, checks: dict[str, Check], now: datetime) -> bool:
    """True when evaluating the rule now would write nothing (read without its lock)."""
    rule = (
        Rule.objects.prefetch_related(Prefetch("companies", queryset=Company.objects.only("pk")))
        .filter(pk=rule_pk, enabled=True)
        .first()
    )
    if rule is None or rule.condition not in checks:
        return True
    step = _step(rule, checks[rule.condition], now)
    if step.write or step.delete or step.fired or step.recovered:
        return False
    if rule.last_evaluated_at is None or now - rule.last_evaluated_at >= NOTE_EVALUATED_EVERY:
        Rule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    return True


def _step(rule: Rule, check: Check, now: datetime) -> _Step:
    found = check.findings(rule, now)
    states = {state.subject: state for state in AlertState.objects.filter(rule=rule)}
    step = _Step(rule, check, now)
    for subject in sorted(found.keys() | states.keys()):
        step.move(subject, found.get(subject), states.get(subject))
    return step


def _evaluate_locked(
    rule_pk: int, checks: dict[str, Check], mutes: _Mutes, now: datetime
) -> list[Transition]:
    rule = (
        Rule.objects.select_for_update()
        .prefetch_related(Prefetch("companies", queryset=Company.objects.only("pk")))
        .filter(pk=rule_pk, enabled=True)
        .first()
    )
    if rule is None or rule.condition not in checks:
        return []  # disabled, deleted or changed since it was listed
    step = _step(rule, checks[rule.condition], now)
    transitions = step.transitions()
    for moved in transitions:
        moved.muted = mutes.silence(rule, moved)
    if step.write:
        AlertState.objects.bulk_create(
            step.write,
            update_conflicts=True,
            unique_fields=["rule", "subject"],
            update_fields=STATE_FIELDS,
        )
    if step.delete:
        AlertState.objects.filter(pk__in=step.delete).delete()
    if transitions:
        Transition.objects.bulk_create(transitions)
        # Recorded whatever happens to their delivery: its failure is logged.
        transaction.on_commit(_delivery_of(transitions), robust=True)
    Rule.objects.filter(pk=rule.pk).update(last_evaluated_at=now)
    return transitions


def _delivery_of(transitions: list[Transition]) -> Callable[[], None]:
    def deliver() -> None:
        from . import delivery

        delivery.enqueue_for(transitions)

    return deliver


@dataclass
class _Step:
    """One rule's evaluation: the states to write or delete and the transitions to record."""

    rule: Rule
    check: Check
    now: datetime
    write: list[AlertState] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    fired: list[tuple[AlertState, Finding]] = field(default_factory=list)
    recovered: list[AlertState] = field(default_factory=list)

    @property
    def hold(self) -> timedelta:
        return timedelta(minutes=self.rule.hold_minutes)

    def move(self, subject: str, finding: Finding | None, state: AlertState | None) -> None:
        if finding is not None:
            self._holds(subject, finding, state)
        elif state is not None:
            self._gone(state)

    def _holds(self, subject: str, finding: Finding, state: AlertState | None) -> None:
        if state is None:
            state = AlertState(
                rule=self.rule, subject=subject, state=SubjectState.OK, since=self.now
            )
        before = (state.state, state.label, state.detail)
        state.label, state.detail = finding.label[:500], finding.detail
        if state.state in (SubjectState.OK, SubjectState.PENDING):
            if state.state == SubjectState.OK:
                state.state, state.since = SubjectState.PENDING, self.now
            if self.now - state.since >= self.hold:
                state.state, state.since = SubjectState.FIRING, self.now
                self.fired.append((state, finding))
        elif state.state == SubjectState.RECOVERING:
            # Back before its recovery held: it never stopped firing, as far as anyone was told.
            state.state, state.since = SubjectState.FIRING, self.now
        if (state.state, state.label, state.detail) != before or state.pk is None:
            state.updated_at = self.now
            self.write.append(state)

    def _gone(self, state: AlertState) -> None:
        began = state.state == SubjectState.FIRING
        if began:
            state.state, state.since, state.updated_at = (
                SubjectState.RECOVERING,
                self.now,
                self.now,
            )
        if state.state == SubjectState.RECOVERING:
            if self.now - state.since >= self.hold:
                self.recovered.append(state)
                self.delete.append(state.pk)
            elif began:
                self.write.append(state)
        else:  # pending (it never fired) or a leftover OK: nothing to remember
            self.delete.append(state.pk)

    def transitions(self) -> list[Transition]:
        self._continue_sequences()
        made = [self._fired(state, finding) for state, finding in self.fired]
        made += self._recovered()
        return made

    def _continue_sequences(self) -> None:
        """New states carry on from their subject's last transition: a state that
        went back to OK was deleted, its transitions were not."""
        new = [state for state in self.write if state.pk is None]
        if not new:
            return
        last = dict(
            Transition.objects.filter(rule=self.rule, subject__in=[s.subject for s in new])
            .values("subject")
            .annotate(last=Max("sequence"))
            .values_list("subject", "last")
        )
        for state in new:
            state.sequence = last.get(state.subject, 0)

    def _fired(self, state: AlertState, finding: Finding) -> Transition:
        state.sequence += 1
        return Transition(
            rule=self.rule,
            subject=state.subject,
            label=finding.label[:500],
            sequence=state.sequence,
            kind=TransitionKind.FIRED,
            at=self.now,
            summary=_line(finding.summary),
            detail=finding.detail,
            path=finding.path[:500],
            company_id=finding.company_pk,
            problem_id=finding.problem_pk,
        )

    def _recovered(self) -> list[Transition]:
        if not self.recovered:
            return []
        # A recovery names what its firing named.
        fired = {
            (t.subject, t.sequence): t
            for t in Transition.objects.filter(
                rule=self.rule,
                kind=TransitionKind.FIRED,
                subject__in=[state.subject for state in self.recovered],
                sequence__in={state.sequence for state in self.recovered},
            ).only("subject", "sequence", "path", "company_id", "problem_id")
        }
        made = []
        for state in self.recovered:
            opened = fired.get((state.subject, state.sequence))
            made.append(
                Transition(
                    rule=self.rule,
                    subject=state.subject,
                    label=state.label,
                    sequence=state.sequence + 1,
                    kind=TransitionKind.RECOVERED,
                    at=self.now,
                    summary=_line(self.check.recovery(self.rule, state)),
                    detail=state.detail,
                    path=opened.path if opened else "",
                    company_id=opened.company_id if opened else None,
                    problem_id=opened.problem_id if opened else None,
                )
            )
        return made


def _line(text: str) -> str:
    return " ".join(text.split())[:500]


class _Mutes:
    """The mutes in force at `now`, read once per evaluation and only if something moved."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._rows: list[tuple[int | None, int | None, int | None]] | None = None

    @property
    def rows(self) -> list[tuple[int | None, int | None, int | None]]:
        if self._rows is None:
            self._rows = list(
                Mute.objects.filter(Q(until__isnull=True) | Q(until__gt=self.now)).values_list(
                    "rule_id", "company_id", "problem_id"
                )
            )
        return self._rows

    def silence(self, rule: Rule, moved: Transition) -> bool:
        """Whether the rule is snoozed, or a mute names all of the rule, company and
        problem it names (a mute without a rule holds for every rule)."""
        if rule.snoozed_until is not None and rule.snoozed_until > self.now:
            return True
        return any(
            (mute_rule is None or mute_rule == rule.pk)
            and (company is None or company == moved.company_id)
            and (problem is None or problem == moved.problem_id)
            for mute_rule, company, problem in self.rows
        )
