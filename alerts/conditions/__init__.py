"""What each condition finds: the subjects for which it holds right now.

A check is registered once per condition (`@register`). The engine asks it for
its findings for one rule, compares them with the rule's stored subject
states, and records the transitions. A check reads summaries the mirror keeps
up to date (companies' streaks, problems' counts, the hourly rollup, health
signals), never a scan of the syncs or items, so evaluating every rule costs
milliseconds at any size.

`triggers` names the changes in the mirror that can make a check's answer
differ (`alerts.triggers.changed(...)` is called by ingest with those names);
checks whose answer moves with the clock alone are evaluated by beat too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

# The changes ingest announces (`alerts.triggers.changed`).
STREAK = "streak"  # a company's failing streak moved
PROBLEMS = "problems"  # a problem appeared, grew, resolved, regressed
SYNCS = "syncs"  # syncs were written (codes, running, platforms' success)
REFRESH = "refresh"  # a refresh finished, well or not
UPSTREAM = "upstream"  # the upstream answered, or failed to
WEBHOOKS = "webhooks"  # a webhook arrived, or a sync was found without one
EVENTS = frozenset({STREAK, PROBLEMS, SYNCS, REFRESH, UPSTREAM, WEBHOOKS})


@dataclass(frozen=True)
class Finding:
    """One subject for which the condition holds now."""

    subject: str  # "company:<uuid>", "problem:<pk>", "platform:<name>" or "system"
    label: str  # its name, for people
    summary: str  # what is wrong, in one line ("Acme Ltd has failed 3 syncs in a row")
    path: str  # the page that shows it ("/companies/<uuid>/")
    detail: dict[str, Any] = field(default_factory=dict)  # counts and companies, JSON-able
    company_pk: int | None = None
    problem_pk: int | None = None


class Check(Protocol):
    condition: str  # an `alerts.vocabulary.Condition`
    triggers: frozenset[str]  # of EVENTS; empty: the clock alone moves it
    timed: bool  # evaluated by beat every minute as well

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]: ...

    def recovery(self, rule: Rule, state: AlertState) -> str:
        """The one line sent when the subject recovers."""
        ...


REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    if check.condition in REGISTRY:
        raise ValueError(f"{check.condition} is registered twice")
    REGISTRY[check.condition] = check
    return check


def checks_for(events: frozenset[str] | None) -> list[Check]:
    """The checks an event can move (None: every check)."""
    _load()
    if events is None:
        return list(REGISTRY.values())
    return [check for check in REGISTRY.values() if check.triggers & events]


_loaded: list[Callable[[], None]] = []


def _load() -> None:
    # The check modules register themselves on import.
    if not _loaded:
        from . import modules  # noqa: F401

        _loaded.append(lambda: None)
