"""Text on the problems' pages is escaped wherever it comes from: upstream messages,
company and platform names, people's notes, tickets and playbooks."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import PlaybookVersion, Problem, ProblemActivity, ProblemCompany
from dashboard.templatetags import problems as tags
from dashboard.vocabulary import ProblemEvent
from tests.support.factories import make_company

HOSTILE = "<x>"


def test_the_tags_escape_what_they_are_given():
    today = timezone.now().date().isoformat()
    strip = str(tags.trend_strip({today: 3, HOSTILE: 2}))
    assert HOSTILE not in strip and 'class="t8"' in strip
    assert HOSTILE not in str(tags.platform_list({HOSTILE: 2, "Xero": 1}))
    assert "&lt;x&gt; (2), Xero (1)" in str(tags.platform_list({HOSTILE: 2, "Xero": 1}))


def test_every_tag_of_the_library_is_covered():
    assert set(tags.register.tags) == {
        "trend_strip",
        "platform_list",
        "problem_rows",
        "problem_company_rows",
        "problem_item_rows",
    }


def test_a_problems_company_and_item_rows_escape_every_cell(hostile_problem):
    from dashboard.problems import selectors

    share = ProblemCompany.objects.select_related("company").get(problem=hostile_problem)
    rows = str(tags.problem_company_rows([share]))
    assert HOSTILE not in rows and rows.count("&lt;x&gt;") == 2
    assert rows.count("<tr>") == 1
    item = selectors.ItemRow(
        1, uuid.uuid4(), share.company.company_id, HOSTILE, uuid.uuid4(), timezone.now(), 4
    )
    rows = str(tags.problem_item_rows([item]))
    assert HOSTILE not in rows and "&lt;x&gt;" in rows
    assert str(item.transaction_id) in rows and str(item.sync_id)[:12] in rows


def test_the_problems_rows_escape_every_cell(hostile_problem):
    from django.contrib.auth.models import User

    hostile_problem.assignee = User.objects.create(username="<y>")
    hostile_problem.cause = f"{HOSTILE} & more"
    rows = str(tags.problem_rows([hostile_problem], since=None))
    assert HOSTILE not in rows and "<y>" not in rows
    assert "&lt;x&gt; &amp; more" in rows and "&lt;y&gt;" in rows
    assert rows.count("<tr ") == 1 and f'data-problem="{hostile_problem.pk}"' in rows


@pytest.mark.parametrize(("n", "peak", "level"), [(0, 5, 0), (1, 100, 1), (5, 10, 4), (10, 10, 8)])
def test_a_bar_is_an_eighth_of_the_tallest_at_least(n, peak, level):
    assert tags.level(n, peak) == level


@pytest.fixture
def hostile_problem(db, lead) -> Problem:
    company = make_company(name=HOSTILE, platform_name=HOSTILE, redirect_url="https://x.example/")
    now = timezone.now()
    problem = Problem.objects.create(
        status_code=4220,
        data_type=HOSTILE,
        cause=HOSTILE,
        example=HOSTILE,
        items_outstanding=1,
        companies_outstanding=1,
        platforms={HOSTILE: 1},
        trend={now.date().isoformat(): 1},
        ticket_url="javascript:alert(1)",
        playbook=f"{HOSTILE} <img src=x onerror=alert(1)>",
        customer_message=f"{HOSTILE} {{company_name}} {{cause}}",
        playbook_version=1,
        assignee=lead,
    )
    ProblemCompany.objects.create(
        problem=problem, company=company, items=1, first_seen=now, last_seen=now
    )
    ProblemActivity.objects.create(
        problem=problem, event=ProblemEvent.NOTE, text=HOSTILE, username=HOSTILE
    )
    PlaybookVersion.objects.create(
        problem=problem, version=1, playbook=HOSTILE, customer_message=HOSTILE, edited_by=HOSTILE
    )
    return problem


def test_no_problem_page_shows_text_raw(client, lead, hostile_problem):
    client.force_login(lead)
    pk = hostile_problem.pk
    other = Problem.objects.create(status_code=5130, cause="other", data_type="x")
    pages = [
        reverse("summary"),
        reverse("problem-list"),
        reverse("problem-list") + "?state=all&platform=%3Cx%3E",
        reverse("problem-detail", args=[pk]),
        reverse("problem-detail", args=[pk]) + f"?company={uuid.uuid4()}",
        reverse("problem-playbook-version", args=[pk, 1]),
        reverse("problem-merge", args=[pk]) + f"?into={other.pk}",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert HOSTILE not in body, url
        assert "<img" not in body, url
        assert 'href="javascript:' not in body, url
    detail = client.get(reverse("problem-detail", args=[pk])).content.decode()
    assert "&lt;x&gt; &lt;x&gt; &lt;x&gt;" in detail  # the customer message, filled, as text
