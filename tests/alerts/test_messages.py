"""What an alert says: one line, the counts and companies, the rule, the time
with its zone, an absolute link; and the JSON a webhook receives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.messages import TEST_TITLE, render, render_digest, render_test
from alerts.vocabulary import Digest, TransitionKind
from tests.support.channels import make_channel, make_rule, make_transition

AT = datetime(2026, 11, 28, 9, 14, 30, tzinfo=UTC)


@pytest.fixture
def rule(db):
    return make_rule(name="Failing streaks")


def test_a_fired_transition_says_what_started_in_one_line(rule, settings):
    settings.SITE_URL = "https://synchealth.example.com"
    transition = make_transition(
        rule,
        at=AT,
        summary="Acme Ltd has failed 3 syncs\nin a row",
        detail={"failed_syncs_in_a_row": 3, "companies": ["Acme Ltd", "Beta plc"]},
        path="/companies/acme/",
    )

    message = render(transition)

    assert message.title == "Started: Acme Ltd has failed 3 syncs in a row"
    assert message.body.splitlines() == [
        "Failed syncs in a row: 3",
        "Companies: Acme Ltd, Beta plc",
        "Rule: Failing streaks (A company's failing streak reaches 3)",
        "When: 2026-11-28 09:14 UTC",
        "See: https://synchealth.example.com/companies/acme/",
    ]


def test_a_recovery_says_recovered(rule):
    transition = make_transition(rule, kind=TransitionKind.RECOVERED, at=AT)
    message = render(transition)
    assert message.title == "Recovered: Acme Ltd synced again"
    assert message.payload["type"] == "alert.recovered"


def test_the_time_is_given_in_the_site_s_zone_and_names_it(rule, settings):
    settings.TIME_ZONE = "Europe/London"
    summer = datetime(2026, 7, 1, 9, 14, tzinfo=UTC)
    assert "When: 2026-07-01 10:14 BST" in render(make_transition(rule, at=summer)).body


def test_without_site_url_the_link_is_the_path(rule, settings):
    settings.SITE_URL = ""
    message = render(make_transition(rule, path="/problems/7/"))
    assert "See: /problems/7/" in message.body
    assert message.payload["url"] == "/problems/7/"


def test_long_lists_of_companies_are_cut_with_a_count(rule):
    names = [f"Company {n}" for n in range(25)]
    message = render(make_transition(rule, detail={"companies": names}))
    assert "Companies: Company 0, Company 1," in message.body
    assert "Company 9 and 15 more" in message.body
    assert "Company 10" not in message.body


def test_the_webhook_payload_carries_the_transition_s_key_and_an_offset_time(rule, settings):
    settings.SITE_URL = "https://synchealth.example.com"
    transition = make_transition(rule, at=AT)
    payload = render(transition).payload
    assert payload == {
        "type": "alert.fired",
        "id": str(transition.key),
        "rule": {"id": rule.pk, "name": "Failing streaks", "condition": "streak", "threshold": 3},
        "subject": "company:acme",
        "label": "Acme Ltd",
        "summary": "Acme Ltd has failed 3 syncs in a row",
        "detail": {"failed_syncs_in_a_row": 3, "companies": ["Acme Ltd"]},
        "url": "https://synchealth.example.com/companies/acme/",
        "at": "2026-11-28T09:14:30+00:00",
    }


def test_a_digest_lists_each_change_with_its_time(db, settings):
    settings.SITE_URL = "https://synchealth.example.com"
    rule = make_rule(name="Quiet streaks", digest=Digest.HOURLY)
    first = make_transition(rule, at=AT, subject="company:a", summary="A failed 3 in a row")
    second = make_transition(
        rule, at=AT, subject="company:b", kind=TransitionKind.RECOVERED, summary="B recovered"
    )

    message = render_digest(rule, [first, second])

    assert message.title == "Summary: 2 changes for Quiet streaks"
    assert "Started: 1, recovered: 1" in message.body
    assert (
        "2026-11-28 09:14 UTC  Started: A failed 3 in a row  "
        "https://synchealth.example.com/companies/acme/"
    ) in message.body
    assert "2026-11-28 09:14 UTC  Recovered: B recovered" in message.body
    assert message.payload["count"] == 2
    assert [t["id"] for t in message.payload["transitions"]] == [str(first.key), str(second.key)]


def test_a_digest_of_many_shows_the_first_and_counts_the_rest(db):
    rule = make_rule(digest=Digest.DAILY)
    shown = [make_transition(rule, at=AT, subject=f"company:{n}") for n in range(3)]
    message = render_digest(rule, shown, total=120)
    assert message.title.startswith("Summary: 120 changes for")
    assert "and 117 more" in message.body


def test_a_test_message_names_its_channel(db):
    channel = make_channel("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", name="Support")
    message = render_test(channel, at=AT)
    assert message.title == TEST_TITLE == "Test from Sync Health: this channel works"
    assert "Channel: Support" in message.body
    assert "When: 2026-11-28 09:14 UTC" in message.body
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in message.body + str(message.payload)


def test_times_in_the_detail_read_in_the_sites_zone_with_the_zone_named():
    from alerts.messages import _detail_lines

    lines = _detail_lines({"failing_since": "2026-11-25T00:07:54.770651+00:00", "note": "T-1000"})
    assert lines == ["Failing since: 2026-11-25 00:07 UTC", "Note: T-1000"]
