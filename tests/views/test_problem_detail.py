"""A problem's page: what it is, who it hits, what to do about it, and what people did.

Viewers read it; runners triage (assign, note, ticket, snooze, ignore,
reopen); leads also write the playbook and merge. Text people wrote is
escaped (notes) or sanitised (playbooks).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.models import PlaybookVersion, Problem, ProblemActivity, TransactionState
from dashboard.problems import lifecycle
from dashboard.problems.playbook import NO_RECONNECT_LINK, fill
from dashboard.vocabulary import ProblemEvent, ProblemState, docs_for, note_for
from tests.support.factories import make_company, make_sync
from tests.support.problems import FAILED, problem_estate

XSS = "<script>alert(1)</script>"


@pytest.fixture
def problems(db):
    return problem_estate()


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def page(problem: Problem) -> str:
    return reverse("problem-detail", args=[problem.pk])


def action(name: str, problem: Problem) -> str:
    return reverse(f"problem-{name}", args=[problem.pk])


def _section(body: str, anchor: str) -> str:
    found = re.search(rf'<section class="card" id="{anchor}".*?</section>', body, re.S)
    assert found, anchor
    return found.group(0)


# --- reading ---


def test_a_viewer_reads_the_whole_problem(viewer_client, problems):
    problem = problems["tax"]
    response = viewer_client.get(page(problem))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Tax rate {code} is missing" in body
    assert "4000" in body and "Configuration error" in body
    assert note_for(4000).meaning in body
    assert f'href="{docs_for(4000)}" rel="noopener noreferrer"' in body
    assert re.search(r'data-testid="counts"><strong>5</strong> items, 1 sync, 1 company', body)
    assert 'class="trend" role="img"' in body
    assert "QuickBooks Online (1)" in body
    # Its first message, then distinct recent ones of its outstanding items.
    examples = re.findall(r'data-testid="example">([^<]*)<', body)
    assert examples[0] == Problem.objects.get(pk=problem.pk).example
    assert len(examples) == 5 and len(set(examples)) == 5
    # Who it hits, what is outstanding, and the way to the history.
    assert "Dale Dental" in _section(body, "companies")
    items = _section(body, "items")
    for state in TransactionState.objects.filter(problem=problem, outstanding=True):
        assert str(state.transaction_id) in items
        assert reverse("sync-detail", args=[state.last_sync.sync_id]) in items
    assert f"{reverse('sync-history')}?problem={problem.pk}&amp;range=all" in body
    assert "First seen" in _section(body, "activity")


def test_a_viewer_sees_no_forms_but_whom_to_ask(viewer_client, problems):
    body = viewer_client.get(page(problems["tax"])).content.decode()
    assert "Ask a support runner to assign this problem" in body
    assert "Ask a support lead to change the playbook" in body
    for name in ("assign", "note", "ticket", "ignore", "snooze", "reopen", "playbook", "merge"):
        assert f'action="{action(name, problems["tax"])}"' not in body


def test_a_runner_sees_the_triage_forms_but_not_the_playbooks(runner_client, problems):
    body = runner_client.get(page(problems["tax"])).content.decode()
    for name in ("assign", "note", "ticket", "ignore", "snooze"):
        assert f'action="{action(name, problems["tax"])}"' in body, name
    assert f'action="{action("playbook", problems["tax"])}"' not in body
    assert f'action="{action("merge", problems["tax"])}"' not in body
    assert "data-disable-on-submit" in body


def test_the_page_reads_a_bounded_number_of_queries(lead_client, problems):
    problem = problems["closed"]
    lead_client.get(page(problem))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert lead_client.get(page(problem)).status_code == 200
        return len(captured)

    few = queries()
    for n in range(30):
        company = make_company(name=f"Extra {n}", platform_name="Xero")
        make_sync(company, code=5130, items=[(FAILED, f"Period closed 2026-0{n % 9 + 1}-28")])
    for n in range(5):
        lifecycle.note(problem.pk, None, f"note {n}")
    assert Problem.objects.get(pk=problem.pk).companies_outstanding == 33
    # (Fewer, if anything: with enough examples among its items, no failed sync is read.)
    assert queries() <= few
    assert few <= 20


def test_each_list_pages_on_by_its_own_cursor(viewer_client, problems):
    from dashboard.problems import selectors

    problem = problems["tax"]
    original = selectors.DETAIL_PAGE_SIZE
    selectors.DETAIL_PAGE_SIZE = 2
    try:
        seen, url = [], page(problem)
        while url:
            body = viewer_client.get(url).content.decode()
            items = _section(body, "items")
            seen += re.findall(r"/transactions/([0-9a-f-]{36})/", items)
            found = re.search(r'rel="next" href="(\?[^"]*items_after[^"]*)"', items)
            url = page(problem) + found.group(1).replace("&amp;", "&") if found else ""
    finally:
        selectors.DETAIL_PAGE_SIZE = original
    expected = TransactionState.objects.filter(problem=problem, outstanding=True)
    assert sorted(seen) == sorted(str(s.transaction_id) for s in expected)
    assert len(seen) == 5


def test_a_bad_page_link_is_a_400(viewer_client, problems):
    response = viewer_client.get(page(problems["tax"]) + "?items_after=garbage")
    assert response.status_code == 400
    assert "That page link is not valid" in response.content.decode()


def test_a_missing_problem_is_a_404(viewer_client, problems):
    assert viewer_client.get(reverse("problem-detail", args=[999999])).status_code == 404


def test_a_merged_problem_leads_to_the_one_it_became(viewer_client, lead, problems):
    lifecycle.merge(problems["amount"].pk, problems["closed"].pk, lead)
    body = viewer_client.get(page(problems["amount"])).content.decode()
    assert 'data-testid="merged"' in body
    assert f'href="{page(problems["closed"])}">problem #{problems["closed"].pk}</a>' in body
    assert "Merged into" in _section(body, "activity")


# --- triage ---


def test_a_runner_assigns_to_someone_with_a_role_and_to_themselves(
    runner_client, runner, lead, problems
):
    problem = problems["tax"]
    response = runner_client.post(action("assign", problem), {"assignee": lead.pk})
    assert response.status_code == 302 and response["Location"] == page(problem)
    assert Problem.objects.get(pk=problem.pk).assignee == lead
    runner_client.post(action("assign", problem), {"assignee": runner.pk})
    assert Problem.objects.get(pk=problem.pk).assignee == runner
    body = runner_client.get(page(problem)).content.decode()
    assert 'data-testid="assignee">runner<' in body
    assert 'data-testid="assign-me"' not in body
    runner_client.post(action("assign", problem), {"assignee": ""})
    assert Problem.objects.get(pk=problem.pk).assignee is None
    events = ProblemActivity.objects.filter(problem=problem, event=ProblemEvent.ASSIGNED)
    assert [e.text for e in events.order_by("at", "pk")] == ["lead", "runner", "Unassigned"]


def test_only_someone_with_a_support_role_can_be_assigned(runner_client, problems):
    from tests.support.users import make_user

    outsider = make_user("outsider")
    response = runner_client.post(action("assign", problems["tax"]), {"assignee": outsider.pk})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert Problem.objects.get(pk=problems["tax"].pk).assignee is None


def test_a_note_stays_text_and_a_double_submit_is_one_note(runner_client, problems):
    problem = problems["tax"]
    for _ in range(2):
        response = runner_client.post(action("note", problem), {"text": f"Called them {XSS}"})
        assert response.status_code == 302
    notes = ProblemActivity.objects.filter(problem=problem, event=ProblemEvent.NOTE)
    assert notes.count() == 1 and notes.get().username == "runner"
    body = runner_client.get(page(problem)).content.decode()
    assert XSS not in body
    assert "Called them &lt;script&gt;alert(1)&lt;/script&gt;" in _section(body, "activity")


def test_an_empty_note_is_refused_and_the_page_says_so(runner_client, problems):
    response = runner_client.post(action("note", problems["tax"]), {"text": "   "})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-testid="change-refused"' in body and "Write something for the note." in body


def test_a_ticket_link_must_be_a_web_address_and_is_kept_when_refused(runner_client, problems):
    problem = problems["tax"]
    response = runner_client.post(action("ticket", problem), {"url": "javascript:alert(1)"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "A ticket link starts with https://" in body
    # What was typed is still there to correct, and never a link.
    assert 'value="javascript:alert(1)"' in body
    assert 'href="javascript:' not in body
    runner_client.post(action("ticket", problem), {"url": "https://tickets.example/T-1"})
    body = runner_client.get(page(problem)).content.decode()
    assert (
        '<a href="https://tickets.example/T-1" rel="noopener noreferrer">'
        "https://tickets.example/T-1</a>" in body
    )
    runner_client.post(action("ticket", problem), {"url": ""})
    assert Problem.objects.get(pk=problem.pk).ticket_url == ""


def test_ignore_then_reopen(runner_client, problems):
    problem = problems["tax"]
    assert runner_client.post(action("ignore", problem), {"reason": "known"}).status_code == 302
    assert Problem.objects.get(pk=problem.pk).state == ProblemState.IGNORED
    body = runner_client.get(page(problem)).content.decode()
    assert f'action="{action("reopen", problem)}"' in body
    assert f'action="{action("ignore", problem)}"' not in body
    assert runner_client.post(action("reopen", problem)).status_code == 302
    assert Problem.objects.get(pk=problem.pk).state == ProblemState.OPEN


def test_snooze_until_a_time_in_the_users_zone(runner_client, runner, problems):
    from dashboard.middleware import ZONE_SESSION_KEY

    session = runner_client.session
    session[ZONE_SESSION_KEY] = "Europe/Paris"
    session.save()
    problem = problems["tax"]
    later = timezone.now().astimezone(timezone.get_fixed_timezone(60)) + timedelta(days=2)
    typed = later.strftime("%Y-%m-%dT%H:%M")
    response = runner_client.post(action("snooze", problem), {"until": typed})
    assert response.status_code == 302
    snoozed = Problem.objects.get(pk=problem.pk)
    assert snoozed.state == ProblemState.SNOOZED
    import zoneinfo

    paris = snoozed.snoozed_until.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    assert paris.strftime("%Y-%m-%dT%H:%M") == typed


def test_snooze_until_more_items_fail(runner_client, problems):
    problem = problems["tax"]
    response = runner_client.post(action("snooze", problem), {"more_failures": "10"})
    assert response.status_code == 302
    assert Problem.objects.get(pk=problem.pk).snooze_until_failures == 15


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Snooze until a date, or until some more items fail."),
        ({"until": "2001-01-01T10:00"}, "Snooze until a time in the future."),
        ({"more_failures": "0"}, "greater than or equal to 1"),
        ({"until": "tomorrow"}, "Enter a valid date/time."),
    ],
)
def test_a_snooze_that_cannot_be_is_refused_with_its_reason(runner_client, problems, data, message):
    response = runner_client.post(action("snooze", problems["tax"]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Problem.objects.get(pk=problems["tax"].pk).state == ProblemState.OPEN


@pytest.mark.parametrize("name", ["assign", "note", "ticket", "ignore", "snooze", "reopen"])
def test_a_viewer_cannot_triage(viewer_client, problems, name):
    response = viewer_client.post(action(name, problems["tax"]), {"text": "x", "assignee": ""})
    assert response.status_code == 403
    assert "You need the Support runner role" in response.content.decode()
    assert not ProblemActivity.objects.exclude(event=ProblemEvent.CREATED).exists()


def test_triage_needs_post_and_a_csrf_token(runner, problems):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(runner)
    assert strict.get(action("note", problems["tax"])).status_code == 405
    assert strict.post(action("note", problems["tax"]), {"text": "hi"}).status_code == 403
    assert not ProblemActivity.objects.filter(event=ProblemEvent.NOTE).exists()


# --- playbooks and the customer message ---


def test_the_playbook_defaults_to_the_codes_note(viewer_client, problems):
    body = viewer_client.get(page(problems["tax"])).content.decode()
    playbook = re.search(r'data-testid="playbook">(.*?)</div>', body, re.S).group(1)
    assert note_for(4000).meaning in playbook
    assert "Next step:" in playbook


def test_a_runner_cannot_edit_the_playbook(runner_client, problems):
    response = runner_client.post(
        action("playbook", problems["tax"]), {"playbook": "x", "customer_message": ""}
    )
    assert response.status_code == 403
    assert "You need the Support lead role to edit a problem&#x27;s playbook." in (
        response.content.decode()
    )
    assert not PlaybookVersion.objects.exists()


def test_a_lead_writes_the_playbook_sanitised_and_versioned(lead_client, problems):
    problem = problems["tax"]
    text = f"### Fix\n\n1. Add the tax rate {XSS}\n2. [x](javascript:alert(1)) [guide](https://help.example/tax)"
    response = lead_client.post(
        action("playbook", problem), {"playbook": text, "customer_message": "Hi {company_name}"}
    )
    assert response.status_code == 302
    body = lead_client.get(page(problem)).content.decode()
    playbook = re.search(r'data-testid="playbook">(.*?)</div>', body, re.S).group(1)
    assert "<h3>Fix</h3>" in playbook and "<ol>" in playbook
    assert "<script" not in playbook and "alert(1)" not in playbook
    assert "javascript:" not in playbook
    assert '<a href="https://help.example/tax" rel="noopener noreferrer">guide</a>' in playbook
    assert "<script>alert(1)</script>" not in body
    # Its version, and the old one still there to read.
    lead_client.post(action("playbook", problem), {"playbook": "Second", "customer_message": ""})
    versions = PlaybookVersion.objects.filter(problem=problem).order_by("version")
    assert [v.version for v in versions] == [1, 2]
    body = lead_client.get(page(problem)).content.decode()
    first = reverse("problem-playbook-version", args=[problem.pk, 1])
    assert f'href="{first}"' in body
    old = lead_client.get(first)
    assert old.status_code == 200
    assert "<h3>Fix</h3>" in old.content.decode()
    assert "Hi {company_name}" in old.content.decode()
    assert "<script>alert" not in old.content.decode()


def test_saving_the_default_unchanged_keeps_following_the_default(lead_client, problems):
    from dashboard.problems.playbook import default_message, default_playbook

    problem = problems["tax"]
    lead_client.post(
        action("playbook", problem),
        {
            "playbook": default_playbook(4000).replace("\n", "\r\n"),
            "customer_message": default_message(4000),
        },
    )
    saved = Problem.objects.get(pk=problem.pk)
    assert (saved.playbook, saved.customer_message, saved.playbook_version) == ("", "", 0)


def test_a_playbook_too_long_is_refused_and_kept(lead_client, problems):
    long = "x" * 20_001
    response = lead_client.post(
        action("playbook", problems["tax"]), {"playbook": long, "customer_message": ""}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Ensure this value has at most 20000 characters" in body
    assert long in body


def test_the_customer_message_is_filled_for_the_company_with_most_items(viewer_client, problems):
    problem = problems["amount"]
    body = viewer_client.get(page(problem)).content.decode()
    message = re.search(r'data-testid="customer-message">(.*?)</pre>', body, re.S).group(1)
    acme = problems["companies"]["acme"]
    assert message.startswith("Hello Acme Ltd team,")
    sync = TransactionState.objects.filter(problem=problem, company=acme).first().last_sync
    assert str(sync.sync_id) in message
    assert sync.sync_utc.strftime("%Y-%m-%d") in message
    assert "Amount {amount} is not valid" in message
    assert 'data-copy="Hello Acme Ltd team,' in body
    # Another company, chosen.
    bolt = problems["companies"]["bolt"]
    body = viewer_client.get(page(problem) + f"?company={bolt.company_id}").content.decode()
    message = re.search(r'data-testid="customer-message">(.*?)</pre>', body, re.S).group(1)
    assert message.startswith("Hello Bolt Bikes team,")


def test_a_deauthorised_companys_message_carries_its_reconnect_link(viewer_client, problems):
    body = viewer_client.get(page(problems["deauth"])).content.decode()
    message = re.search(r'data-testid="customer-message">(.*?)</pre>', body, re.S).group(1)
    assert "https://link.codat.io/company/elm-reconnect" in message
    problems["companies"]["elm"].__class__.objects.filter(
        pk=problems["companies"]["elm"].pk
    ).update(redirect_url="")
    body = viewer_client.get(page(problems["deauth"])).content.decode()
    assert NO_RECONNECT_LINK in body


def test_placeholders_are_replaced_once_and_unknown_ones_left_as_typed():
    filled = fill(
        "{company_name} {sync_id} {unknown} {cause.__class__} {{cause}}",
        company_name="{sync_id} & Co",
        sync_id="S-1",
        sync_utc=None,
        cause="bad {number}",
        reconnect_link="",
    )
    assert filled.text == "{sync_id} & Co S-1 {unknown} {cause.__class__} {bad {number}}"


def test_a_lead_writes_a_customer_message_that_is_shown_as_text(lead_client, problems):
    problem = problems["tax"]
    lead_client.post(
        action("playbook", problem),
        {"playbook": "", "customer_message": f"Dear {{company_name}}, {XSS} {{reconnect_link}}"},
    )
    body = lead_client.get(page(problem)).content.decode()
    message = re.search(r'data-testid="customer-message">(.*?)</pre>', body, re.S).group(1)
    assert message == f"Dear Dale Dental, &lt;script&gt;alert(1)&lt;/script&gt; {NO_RECONNECT_LINK}"


# --- merging ---


def test_a_lead_merges_after_a_confirmation(lead_client, problems):
    source, target = problems["amount"], problems["closed"]
    merge = action("merge", source)
    confirm = lead_client.get(f"{merge}?into={target.pk}")
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert 'data-testid="confirm-merge"' in body
    assert Problem.objects.get(pk=source.pk).state != ProblemState.MERGED
    response = lead_client.post(merge, {"into": target.pk})
    assert response.status_code == 302 and response["Location"] == page(target)
    assert Problem.objects.get(pk=source.pk).state == ProblemState.MERGED
    assert Problem.objects.get(pk=target.pk).companies_outstanding == 3
    assert Problem.objects.get(pk=target.pk).items_outstanding == 6


@pytest.mark.parametrize(
    ("into", "message"),
    [
        ("999999", "There is no problem #999999."),
        ("self", "A problem cannot be merged into itself."),
        ("abc", "Enter a whole number."),
    ],
)
def test_a_merge_that_cannot_be_is_a_400(lead_client, problems, into, message):
    source = problems["amount"]
    into = str(source.pk) if into == "self" else into
    for response in (
        lead_client.get(f"{action('merge', source)}?into={into}"),
        lead_client.post(action("merge", source), {"into": into}),
    ):
        assert response.status_code == 400
        assert message in response.content.decode()
    assert Problem.objects.get(pk=source.pk).state == ProblemState.OPEN


def test_a_runner_cannot_merge(runner_client, problems):
    source, target = problems["amount"], problems["closed"]
    for response in (
        runner_client.get(f"{action('merge', source)}?into={target.pk}"),
        runner_client.post(action("merge", source), {"into": target.pk}),
    ):
        assert response.status_code == 403
        assert "You need the Support lead role to merge problems." in response.content.decode()
    assert Problem.objects.get(pk=source.pk).state == ProblemState.OPEN


def test_anonymous_visitors_are_sent_to_log_in(client, problems):
    for url in (
        reverse("problem-list"),
        page(problems["tax"]),
        action("merge", problems["tax"]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    response = client.post(action("note", problems["tax"]), {"text": "hi"})
    assert response.status_code == 302
    assert not ProblemActivity.objects.filter(event=ProblemEvent.NOTE).exists()
