"""The Problems page: by impact, its filters, headline and CSV; the dashboard's Top problems."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.models import AccessEvent, Problem, UserPreference
from dashboard.problems import lifecycle, upkeep
from dashboard.vocabulary import AccessAction, ProblemState
from tests.support.factories import make_company, make_sync
from tests.support.problems import FAILED, problem_estate

LIST = reverse("problem-list")


@pytest.fixture
def problems(db):
    return problem_estate()


def _shown(response) -> list[int]:
    """The problems a list page shows, in its order."""
    assert response.status_code == 200, response.content.decode()[:2000]
    return [int(pk) for pk in re.findall(r'data-problem="(\d+)"', response.content.decode())]


def test_the_list_puts_the_problems_affecting_most_companies_first(viewer_client, problems):
    shown = _shown(viewer_client.get(LIST))
    # Three companies, then two, then one each: the one with more items first.
    assert shown == [
        problems["closed"].pk,
        problems["amount"].pk,
        problems["tax"].pk,
        problems["deauth"].pk,
    ]


def test_each_row_shows_the_cause_code_counts_trend_platforms_state_and_assignee(
    viewer_client, problems, lead
):
    lifecycle.assign(problems["tax"].pk, lead, lead)
    body = viewer_client.get(LIST).content.decode()
    row = re.search(rf'<tr data-problem="{problems["tax"].pk}">(.*?)</tr>', body, re.S).group(1)
    assert "Tax rate {code} is missing" in row
    assert ">4000<" in row and "Configuration error" in row and "directCosts" in row
    assert re.search(r'data-label="Items">5<', row)
    assert re.search(r'data-label="Syncs">1<', row)
    assert re.search(r'data-label="Companies">1<', row)
    assert 'class="trend" role="img"' in row and 'class="t8"' in row
    assert "QuickBooks Online (1)" in row
    assert "pstate-open" in row and ">Open<" in row
    assert ">lead<" in row


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("code=4000", ["tax"]),
        ("platform=QuickBooks+Online", ["tax"]),
        ("platform=Xero", ["closed"]),
        ("platform=Xero&state=all", ["closed", "amount"]),
        ("state=ignored", ["amount"]),
        ("state=all", ["closed", "amount", "tax", "deauth"]),
        ("assignee=me", ["deauth"]),
        ("assignee=lead", ["closed"]),
        ("assignee=none", ["tax"]),
        ("sort=recent", ["deauth", "closed", "tax"]),
    ],
)
def test_each_filter_narrows_the_list(viewer_client, viewer, lead, problems, query, expected):
    lifecycle.ignore(problems["amount"].pk, lead, "known")
    lifecycle.assign(problems["closed"].pk, lead, lead)
    lifecycle.assign(problems["deauth"].pk, viewer, viewer)
    shown = _shown(viewer_client.get(f"{LIST}?{query}"))
    assert shown == [problems[name].pk for name in expected]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("state=sideways", "Select a valid choice"),
        ("state=merged", "Select a valid choice"),
        ("code=abc", "A status code is a four-digit number"),
        ("code=99", "Ensure this value is greater than or equal to 1000"),
        ("platform=Nowhere", "Select a valid choice"),
        ("assignee=somebody-else", "Select a valid choice"),
        ("sort=colour", "Select a valid choice"),
        ("after=not-a-cursor", "That page link is not valid"),
    ],
)
def test_an_invalid_filter_is_a_400_that_says_why(viewer_client, problems, query, message):
    response = viewer_client.get(f"{LIST}?{query}")
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "data-problem=" not in body


def test_pages_follow_on_without_repeating_or_skipping(viewer_client, problems, settings):
    from dashboard.problems import selectors

    everything = _shown(viewer_client.get(f"{LIST}?state=all"))
    seen, url = [], f"{LIST}?state=all"
    original = selectors.PAGE_SIZE
    selectors.PAGE_SIZE = 1
    try:
        while url:
            response = viewer_client.get(url)
            seen += _shown(response)
            found = re.search(r'rel="next" href="([^"]+)"', response.content.decode())
            url = LIST + found.group(1).replace("&amp;", "&") if found else ""
    finally:
        selectors.PAGE_SIZE = original
    assert seen == everything


def test_the_headline_counts_problems_and_distinct_companies(viewer_client, problems):
    body = viewer_client.get(LIST).content.decode()
    headline = re.search(r'data-testid="headline">(.*?)</p>', body, re.S).group(1)
    text = re.sub(r"<[^>]+>", "", headline)
    # Acme and Bolt have two problems each: five companies, not seven.
    assert text.startswith("4 problems affect 5 companies (12 outstanding items)")
    assert "first look" in text


@pytest.mark.parametrize("platform", ["", "Xero", "Unknown"])
def test_the_headline_counts_the_same_companies_from_kept_sets_or_read_afresh(
    viewer_client, problems, platform
):
    """The sets of companies a process keeps give what reading every share again gives."""
    from dashboard.problems import membership

    url = f"{LIST}?state=all&platform={platform}"

    def companies() -> str:
        body = viewer_client.get(url).content.decode()
        headline = re.search(r'data-testid="headline">(.*?)</p>', body, re.S).group(1)
        return re.sub(r"<[^>]+>", "", headline).split(" (")[0]

    membership.forget()
    afresh = companies()
    assert companies() == afresh
    membership.forget()
    assert companies() == afresh


def test_the_headline_says_what_is_new_or_regressed_since_the_look_before(
    viewer_client, viewer, problems
):
    looked = timezone.now() - timedelta(hours=2)
    UserPreference.objects.update_or_create(user=viewer, defaults={"problems_seen_at": looked})
    Problem.objects.update(created_at=looked - timedelta(days=1))
    # Since then: a problem found, and one that resolved and came back.
    Problem.objects.filter(pk=problems["tax"].pk).update(created_at=looked + timedelta(minutes=1))
    Problem.objects.filter(pk=problems["deauth"].pk).update(
        state=ProblemState.REGRESSED, regressed_at=looked + timedelta(minutes=1)
    )
    body = viewer_client.get(LIST).content.decode()
    assert 'data-testid="new-count">1 new<' in body
    assert 'data-testid="regressed-count">1 regressed<' in body
    assert 'data-testid="new">new<' in body and 'data-testid="came-back">came back<' in body
    # The visit's next pages compare with the same look, though this one marked the page seen.
    assert UserPreference.objects.get(user=viewer).problems_seen_at > looked
    for _ in range(2):
        shown = _shown(viewer_client.get(f"{LIST}?changed=on"))
        assert shown == [problems["tax"].pk, problems["deauth"].pk]


def test_a_visit_ends_and_the_next_compares_with_its_last_look(viewer_client, viewer, problems):
    viewer_client.get(LIST)
    first = UserPreference.objects.get(user=viewer).problems_seen_at
    # Everything found before the first look: nothing is new on the next visit.
    Problem.objects.update(created_at=first - timedelta(days=1))
    # An hour later: a new visit.
    UserPreference.objects.filter(user=viewer).update(problems_seen_at=first - timedelta(hours=1))
    Problem.objects.filter(pk=problems["tax"].pk).update(created_at=first - timedelta(minutes=30))
    assert _shown(viewer_client.get(f"{LIST}?changed=on")) == [problems["tax"].pk]
    assert _shown(viewer_client.get(f"{LIST}?changed=on")) == [problems["tax"].pk]


def test_opening_the_page_marks_it_seen(viewer_client, viewer, problems):
    before = timezone.now()
    viewer_client.get(LIST)
    assert UserPreference.objects.get(user=viewer).problems_seen_at >= before


def test_looks_a_moment_apart_are_one_look_and_write_nothing(viewer_client, viewer, problems):
    viewer_client.get(LIST)
    first = UserPreference.objects.get(user=viewer).problems_seen_at
    with CaptureQueriesContext(connection) as captured:
        assert viewer_client.get(f"{LIST}?state=open").status_code == 200
    writes = [q["sql"] for q in captured if q["sql"].startswith(("UPDATE", "INSERT"))]
    assert writes == []
    assert UserPreference.objects.get(user=viewer).problems_seen_at == first
    # A minute on, it is a look of its own again.
    with time_machine.travel(first + timedelta(minutes=2), tick=False):
        viewer_client.get(LIST)
    assert UserPreference.objects.get(user=viewer).problems_seen_at == first + timedelta(minutes=2)


def test_the_list_reads_a_bounded_number_of_queries(viewer_client, problems):
    viewer_client.get(LIST)  # the session's time zone, the preference row

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get(url).status_code == 200
        return len(captured)

    few = queries(LIST)
    company = make_company(name="More Ltd", platform_name="Xero")
    for n in range(12):
        make_sync(company, code=5130, items=[(FAILED, f"Distinct cause number {'x' * n}")])
    assert Problem.objects.count() > 12
    assert queries(LIST) == few
    chosen = f"{LIST}?state=all&changed=on&platform=Xero&sort=recent"
    queries(chosen)  # reads the problems' sets of companies, kept for the next look
    # Its problems' versions of their sets, and the platform's companies.
    assert queries(chosen) <= few + 2
    assert few <= 15


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_csv_export_has_the_lists_rows_and_filters(viewer_client, problems):
    rows = _csv(viewer_client.get(reverse("problem-list-csv")))
    assert rows[0][:6] == ["problem", "state", "status_code", "status", "data_type", "cause"]
    assert [int(row[0]) for row in rows[1:]] == _shown(viewer_client.get(LIST))
    tax = next(row for row in rows if row[0] == str(problems["tax"].pk))
    assert tax[2:6] == ["4000", "Configuration error", "directCosts", "Tax rate {code} is missing"]
    assert tax[11] == "QuickBooks Online: 1"
    assert tax[-1].endswith(f"/problems/{problems['tax'].pk}/")
    only = _csv(viewer_client.get(reverse("problem-list-csv") + "?code=4000"))
    assert [row[0] for row in only[1:]] == [str(problems["tax"].pk)]


def test_the_csv_export_neutralises_formulas_and_is_audited(viewer_client, viewer, problems):
    Problem.objects.filter(pk=problems["tax"].pk).update(cause='=HYPERLINK("http://x")')
    rows = _csv(viewer_client.get(reverse("problem-list-csv") + "?code=4000"))
    assert rows[1][5] == '\'=HYPERLINK("http://x")'
    event = AccessEvent.objects.get(action=AccessAction.CSV_EXPORT)
    assert event.username == viewer.username
    assert event.path == reverse("problem-list-csv")
    assert event.detail == {"filter": "code=4000", "rows": 1, "finished": True}


def test_the_csv_export_refuses_an_invalid_filter(viewer_client, problems):
    response = viewer_client.get(reverse("problem-list-csv") + "?state=sideways")
    assert response.status_code == 400
    assert "Invalid filter" in response.content.decode()
    assert not AccessEvent.objects.filter(action=AccessAction.CSV_EXPORT).exists()


def test_the_dashboard_leads_with_the_top_problems(viewer_client, problems):
    body = viewer_client.get(reverse("summary")).content.decode()
    assert "Most frequent errors" not in body
    panel = re.search(r'data-testid="top-problems">(.*?)</section>', body, re.S).group(1)
    shown = [int(pk) for pk in re.findall(r'data-problem="(\d+)"', panel)]
    assert shown == [
        problems["closed"].pk,
        problems["amount"].pk,
        problems["tax"].pk,
        problems["deauth"].pk,
    ]
    assert f'href="{LIST}"' in panel and "All 4 problems needing attention" in panel
    # Before the history: what is broken first.
    assert body.index('data-testid="top-problems"') < body.index('aria-label="Totals"')
    on_sage = viewer_client.get(reverse("summary") + "?platform=Sage").content.decode()
    panel = re.search(r'data-testid="top-problems">(.*?)</section>', on_sage, re.S).group(1)
    assert re.findall(r'data-problem="(\d+)"', panel) == [str(problems["deauth"].pk)]
    assert f"{LIST}?platform=Sage" in panel


def test_the_top_problems_leave_out_what_no_longer_needs_attention(viewer_client, lead, problems):
    for name in ("closed", "amount", "tax"):
        lifecycle.ignore(problems[name].pk, lead)
    body = viewer_client.get(reverse("summary")).content.decode()
    panel = re.search(r'data-testid="top-problems">(.*?)</section>', body, re.S).group(1)
    assert re.findall(r'data-problem="(\d+)"', panel) == [str(problems["deauth"].pk)]
    assert "All 1 problem needing attention" in panel


def test_the_navigation_leads_to_the_problems(viewer_client, problems):
    body = viewer_client.get(reverse("sync-history")).content.decode()
    assert f'<a href="{LIST}" >Problems</a>' in body or f'href="{LIST}"' in body
    page = viewer_client.get(LIST).content.decode()
    assert f'<a href="{LIST}" aria-current="page">Problems</a>' in page


def _expected_companies(filters, platform: str) -> int:
    from dashboard.models import ProblemCompany
    from dashboard.problems import selectors

    chosen = selectors.matching(filters).values("pk")
    shares = ProblemCompany.objects.filter(problem__in=chosen)
    if platform:
        shares = shares.filter(company__platform_name=platform)
    return shares.values("company_id").distinct().count()


@pytest.mark.parametrize("platform", ["", "Xero"])
def test_every_selections_headline_companies_are_what_the_shares_say(problems, lead, platform):
    """Each selection's distinct companies, from the open companies' count or the union of
    its problems' kept sets: always what the shares themselves say, with the sets kept
    from one selection to the next or not."""
    from dashboard.models import Company
    from dashboard.problems import membership, selectors

    # One ignored, one regressed: the selections by state differ from the open ones.
    lifecycle.ignore(problems["amount"].pk, lead)
    upkeep.count_open_of(problems["amount"].pk)
    Problem.objects.filter(pk=problems["tax"].pk).update(state=ProblemState.REGRESSED)
    base = selectors.ProblemFilter(platform=platform)
    choices = [
        base,
        replace(base, state="open"),
        replace(base, state="regressed"),
        replace(base, state="ignored"),
        replace(base, state=selectors.ANY_STATE),
        replace(base, code=problems["closed"].status_code),
        replace(base, state=selectors.ANY_STATE, code=problems["amount"].status_code),
    ]
    for kept in (False, True):
        for filters in choices:
            if not kept:
                membership.forget()
            expected = _expected_companies(filters, platform)
            assert selectors.headline(filters).companies == expected, filters
    assert Company.objects.filter(problems_open__gt=0).exists()


def test_a_kept_set_of_companies_follows_a_company_gaining_and_losing_its_share(problems):
    """The upkeep bumps a problem's version when a company gains or loses its share (not
    when nothing changed), so a kept set is read again exactly then."""
    from dashboard.models import Company, ProblemCompany, TransactionState
    from dashboard.problems import membership, selectors

    any_state = selectors.ProblemFilter(state=selectors.ANY_STATE)
    membership.forget()
    before = selectors.headline(any_state).companies
    share = ProblemCompany.objects.filter(problem=problems["closed"]).order_by("pk").first()
    problem = Problem.objects.get(pk=share.problem_id)
    others = ProblemCompany.objects.filter(company_id=share.company_id).exclude(pk=share.pk)
    still_affected = others.exists()
    version = problem.companies_version
    # The company's items of the problem were pushed elsewhere: it loses its share.
    TransactionState.objects.filter(
        company_id=share.company_id, problem=problem, outstanding=True
    ).update(outstanding=False)
    upkeep.recount([share.company_id])
    problem.refresh_from_db()
    assert problem.companies_version == version + 1
    assert selectors.headline(any_state).companies == before - (0 if still_affected else 1)
    assert selectors.headline(any_state).companies == _expected_companies(any_state, "")
    # Counted again with nothing changed: the version stays.
    upkeep.recount(list(Company.objects.values_list("pk", flat=True)))
    problem.refresh_from_db()
    assert problem.companies_version == version + 1
