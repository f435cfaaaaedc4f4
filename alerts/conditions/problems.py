"""Problems (groups of outstanding failures with one cause) that ask for attention:
a new one, one that regressed, one reaching N companies.

A new or regressed problem is an event; what it opened ends when the problem
is resolved. Only problems found after the rule was made count, so a new rule
does not page about everything already known. Problems are few (groups, not
failures), their counts are kept by ingest, and the states and impact have
indexes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse

from alerts.vocabulary import Condition
from dashboard.db import problems as db_problems
from dashboard.models import Company, Problem, ProblemCompany
from dashboard.vocabulary import ProblemState

from . import PROBLEMS, Finding, register
from .terms import company, company_pks, threshold

if TYPE_CHECKING:
    from alerts.models import AlertState, Rule

# The companies a finding names: those with the most outstanding items.
NAMED_COMPANIES = 5
# What a person took out of the picture: an ignored problem, or one merged into another.
SET_ASIDE = (ProblemState.IGNORED, ProblemState.MERGED)


def scoped(rule: Rule, problems: QuerySet[Problem]) -> QuerySet[Problem]:
    """The problems with an outstanding share at one of the rule's companies, on one of
    its platforms."""
    pks = company_pks(rule)
    if pks:
        problems = problems.filter(
            Exists(ProblemCompany.objects.filter(problem=OuterRef("pk"), company__in=pks))
        )
    if rule.platforms:
        problems = problems.filter(platforms__has_any_keys=list(rule.platforms))
    return problems


FIELDS = (
    "pk",
    "status_code",
    "data_type",
    "cause",
    "state",
    "items_outstanding",
    "syncs_outstanding",
    "companies_outstanding",
    "platforms",
)


class _ProblemCheck:
    triggers = frozenset({PROBLEMS})
    timed = False
    headline = ""

    def problems(self, rule: Rule) -> QuerySet[Problem]:
        """The problems for which this condition holds; each of the three checks says which."""
        raise NotImplementedError  # the base of the three checks below, never registered

    def findings(self, rule: Rule, now: datetime) -> dict[str, Finding]:
        problems = list(scoped(rule, self.problems(rule)).only(*FIELDS))
        named = _top_companies([problem.pk for problem in problems])
        found = {}
        for problem in problems:
            subject = f"problem:{problem.pk}"
            found[subject] = Finding(
                subject=subject,
                label=_label(problem),
                summary=f"{self.headline}: {_label(problem)} "
                f"({_count(problem.items_outstanding, 'item')} in "
                f"{_count(problem.syncs_outstanding, 'sync')} outstanding at "
                f"{_count(problem.companies_outstanding, 'company', 'companies')})",
                path=reverse("problem-detail", args=[problem.pk]),
                detail={
                    "problem": problem.pk,
                    "status_code": problem.status_code,
                    "data_type": problem.data_type,
                    "cause": problem.cause,
                    "state": problem.state,
                    "items": problem.items_outstanding,
                    "syncs": problem.syncs_outstanding,
                    "companies_count": problem.companies_outstanding,
                    "platforms": problem.platforms,
                    "companies": named.get(problem.pk, []),
                    **self.more_detail(rule),
                },
                problem_pk=problem.pk,
            )
        return found

    def more_detail(self, rule: Rule) -> dict[str, Any]:
        return {}

    def recovery(self, rule: Rule, state: AlertState) -> str:
        return f"No longer open: {state.label or state.subject}"


class NewProblem(_ProblemCheck):
    condition: str = Condition.PROBLEM_NEW
    headline = "New problem"

    def problems(self, rule: Rule) -> QuerySet[Problem]:
        # Never resolved: one that resolved and came back is a regression.
        return Problem.objects.filter(
            state__in=[ProblemState.OPEN, ProblemState.SNOOZED],
            resolved_at__isnull=True,
            created_at__gte=rule.created_at,
        )


class RegressedProblem(_ProblemCheck):
    condition: str = Condition.PROBLEM_REGRESSED
    headline = "Regressed"

    def problems(self, rule: Rule) -> QuerySet[Problem]:
        # A snooze leaves a regressed problem regressed underneath.
        return Problem.objects.filter(
            Q(state=ProblemState.REGRESSED)
            | Q(state=ProblemState.SNOOZED, state_before_snooze=ProblemState.REGRESSED),
            regressed_at__gte=rule.created_at,
        )


class ManyCompanies(_ProblemCheck):
    condition: str = Condition.PROBLEM_COMPANIES
    headline = "Widespread"

    def problems(self, rule: Rule) -> QuerySet[Problem]:
        return Problem.objects.filter(companies_outstanding__gte=threshold(rule)).exclude(
            state__in=SET_ASIDE
        )

    def more_detail(self, rule: Rule) -> dict[str, Any]:
        return {"threshold": threshold(rule)}

    def recovery(self, rule: Rule, state: AlertState) -> str:
        least = threshold(rule)
        return f"Outstanding at fewer than {least} companies now: {state.label or state.subject}"


def _label(problem: Problem) -> str:
    kind = f"{problem.status_code} {problem.data_type}".strip()
    return f"Problem #{problem.pk} ({kind}): {problem.cause[:200]}"


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _top_companies(problem_pks: list[int]) -> dict[int, list[dict[str, str]]]:
    """Each problem's companies with the most outstanding items: one index probe
    per problem, then their names in one query."""
    ranked = db_problems.top_companies(problem_pks, NAMED_COMPANIES)
    names = {
        pk: company(company_id, name, platform)
        for pk, company_id, name, platform in Company.objects.filter(
            pk__in={company_pk for _, company_pk in ranked}
        ).values_list("pk", "company_id", "name", "platform_name")
    }
    named: dict[int, list[dict[str, str]]] = defaultdict(list)
    for problem_pk, company_pk in ranked:
        named[problem_pk].append(names[company_pk])
    return dict(named)


register(NewProblem())
register(RegressedProblem())
register(ManyCompanies())
