"""A bulk retry retries exactly the syncs its preview showed, in the user's time zone.

The custom date range is read in the zone of the person who opened the
preview; syncs just inside and just outside each edge, in that zone and in
UTC, tell the two readings apart. The worker never reads the filter again.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from dashboard import bulk_retry, preferences
from dashboard.fingerprint import fingerprint
from dashboard.models import BulkMember, BulkRetry, RetryRequest, Sync
from dashboard.tasks import fan_out_bulk_task, follow_retries_task, run_retry_task
from dashboard.vocabulary import Code
from tests.support.bulk import listed_syncs, open_preview, review_post, shown_count
from tests.support.factories import make_company, make_sync

DAY = date(2026, 7, 15)  # summer: Los Angeles is UTC-7, Kiritimati UTC+14
ZONES = ["Pacific/Kiritimati", "America/Los_Angeles"]
QUERY = f"range=custom&start={DAY}&end={DAY}&code=5130"
FAILED = [(4, "The account period has closed.")]


def _edges(zone: str) -> dict[str, datetime]:
    """Moments a minute either side of the day's edges, in the zone and in UTC."""
    local = datetime.combine(DAY, time.min, tzinfo=ZoneInfo(zone))
    utc = datetime.combine(DAY, time.min, tzinfo=UTC)
    minute = timedelta(minutes=1)
    day = timedelta(days=1)
    return {
        "before the zone's day": local - minute,
        "the zone's first minute": local + minute,
        "the zone's last minute": local + day - minute,
        "after the zone's day": local + day + minute,
        "before the UTC day": utc - minute,
        "the UTC day's first minute": utc + minute,
        "the UTC day's last minute": utc + day - minute,
        "after the UTC day": utc + day + minute,
    }


def _inside(moment: datetime, zone: str) -> bool:
    start = datetime.combine(DAY, time.min, tzinfo=ZoneInfo(zone))
    return start <= moment < start + timedelta(days=1)


@pytest.fixture
def edge_syncs(db):
    """One failed sync with an outstanding item at each edge moment of each zone."""

    def build(zone: str) -> dict[str, Sync]:
        company = make_company(name=f"Edges of {zone}")
        return {
            name: make_sync(
                company,
                code=Code.DATA_PUSH_ERROR,
                items=FAILED,
                sync_utc=moment,
                items_outstanding=1,
                error_message="Data push error",
            )
            for name, moment in _edges(zone).items()
        }

    return build


def _lead_in(client, lead, zone: str) -> None:
    preferences.save(preferences.for_user(lead.pk), use_local_time=True, time_zone=zone)
    client.force_login(lead)


def _confirm_and_fan_out(client, bulk: BulkRetry, **form) -> set[str]:
    """Confirm the preview and run its fan-out; returns the syncs it made requests for."""
    with (
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
        mock.patch.object(run_retry_task, "delay"),
    ):
        with TestCase.captureOnCommitCallbacks(execute=True):
            answer = review_post(client, bulk, confirm=True, **form)
        assert answer.status_code == 302, answer.content.decode()[:3000]
        assert answer["Location"] == reverse("bulk-detail", args=[bulk.pk])
        fan_out.assert_called_once_with(bulk.pk)
        # The worker runs in UTC, whatever zone the preview was read in.
        with timezone.override(UTC):
            fan_out_bulk_task(bulk.pk)
    return {
        str(sync_id)
        for sync_id in RetryRequest.objects.filter(bulk=bulk).values_list(
            "sync__sync_id", flat=True
        )
    }


@pytest.mark.parametrize("zone", ZONES)
def test_exactly_the_previewed_syncs_are_retried_in_the_users_zone(client, lead, edge_syncs, zone):
    syncs = edge_syncs(zone)
    in_zone = {str(s.sync_id) for name, s in syncs.items() if _inside(s.sync_utc, zone)}
    in_utc = {str(s.sync_id) for name, s in syncs.items() if _inside(s.sync_utc, "UTC")}
    assert in_zone != in_utc  # the edges tell the two readings apart
    _lead_in(client, lead, zone)

    bulk = open_preview(client, QUERY)
    assert bulk.time_zone == zone and f"({zone} time)" in bulk.description
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert listed_syncs(page) == in_zone
    assert shown_count(page) == len(in_zone)

    requested = _confirm_and_fan_out(client, bulk)
    assert requested == in_zone  # no more, none missing
    assert RetryRequest.objects.filter(bulk=bulk).exclude(state="queued").count() == 0


@pytest.mark.parametrize("zone", ZONES)
def test_a_sync_left_out_in_the_preview_is_not_retried(client, lead, edge_syncs, zone):
    syncs = edge_syncs(zone)
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    previewed = {str(m) for m in bulk.members.values_list("sync__sync_id", flat=True)}
    left_out = str(syncs["the zone's first minute"].sync_id)
    assert left_out in previewed

    saved = review_post(client, bulk, leave_out=[left_out])
    assert saved.status_code == 302
    page = client.get(saved["Location"]).content.decode()
    assert shown_count(page) == len(previewed) - 1
    assert 'data-testid="bulk-left-out">1 sync left out.' in page

    requested = _confirm_and_fan_out(client, bulk)
    assert requested == previewed - {left_out}
    member = BulkMember.objects.get(bulk=bulk, sync__sync_id=left_out)
    assert not member.included and member.request is None


def test_unticking_a_sync_and_confirming_at_once_confirms_nothing_until_the_count_is_seen(
    client, lead, edge_syncs
):
    """The button said "Retry 4 syncs": 3 are not retried on its word; the choice is kept."""
    zone = ZONES[0]
    syncs = edge_syncs(zone)
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    before = bulk.members.count()
    left_out = str(syncs["the zone's last minute"].sync_id)
    with mock.patch.object(fan_out_bulk_task, "delay") as fan_out:
        answer = review_post(client, bulk, leave_out=[left_out], confirm=True)
    assert answer.status_code == 400
    assert f"now holds {before - 1} syncs, not {before}" in answer.content.decode()
    assert fan_out.call_count == 0
    bulk.refresh_from_db()
    assert bulk.state == "draft"
    assert not BulkMember.objects.get(bulk=bulk, sync__sync_id=left_out).included
    assert _confirm_and_fan_out(client, bulk) == {
        str(m.sync.sync_id) for m in bulk.members.filter(included=True).select_related("sync")
    }


@pytest.mark.parametrize("zone", ZONES)
def test_syncs_that_arrive_or_change_after_the_preview_are_not_added(
    client, lead, edge_syncs, zone
):
    syncs = edge_syncs(zone)
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    previewed = {str(m) for m in bulk.members.values_list("sync__sync_id", flat=True)}
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    # Between the preview and the confirmation: a new failed sync inside the range,
    # an old one outside it gains outstanding items, and the person switches to UTC.
    inside = datetime.combine(DAY, time(12), tzinfo=ZoneInfo(zone))
    late = make_sync(
        syncs["the zone's first minute"].company, code=Code.DATA_PUSH_ERROR, items=FAILED,
        sync_utc=inside, items_outstanding=1,
    )  # fmt: skip
    outside = syncs["after the zone's day"]
    Sync.objects.filter(pk=outside.pk).update(items_outstanding=3)
    preferences.save(preferences.for_user(lead.pk), use_local_time=False, time_zone="UTC")
    client.force_login(lead)

    assert listed_syncs(client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()) == (
        listed_syncs(page)
    )
    requested = _confirm_and_fan_out(client, bulk, expected=len(previewed))
    assert requested == previewed
    assert str(late.sync_id) not in requested and str(outside.sync_id) not in requested


def test_a_member_resolved_since_the_preview_is_skipped_and_says_why(client, lead, edge_syncs):
    zone = ZONES[1]
    syncs = edge_syncs(zone)
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    resolved = syncs["the zone's first minute"]
    # Its item was pushed since (by another retry): nothing left to retry.
    make_sync(
        resolved.company, code=Code.SUCCESS, items=[(3, None)],
        transaction_ids=resolved.items.values_list("transaction_id", flat=True),
        retry_of=resolved,
    )  # fmt: skip
    resolved.refresh_from_db()
    assert resolved.items_outstanding == 0 and resolved.resolved_at is not None
    requested = _confirm_and_fan_out(client, bulk)
    assert str(resolved.sync_id) in requested  # accounted for, not silently dropped
    skipped = RetryRequest.objects.get(bulk=bulk, sync=resolved)
    assert skipped.state == "skipped" and skipped.reason
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert skipped.reason in page


# --- the typed confirmation ---


@pytest.fixture
def above_threshold(client, lead, edge_syncs, settings):
    """A preview of four syncs, above a threshold of three."""
    settings.BULK_RETRY_CONFIRM_THRESHOLD = 3
    zone = ZONES[0]
    edge_syncs(zone)
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    assert bulk.members.count() == 4
    return bulk


def test_above_the_threshold_the_page_asks_for_the_number(client, above_threshold):
    page = client.get(reverse("bulk-review", args=[above_threshold.pk])).content.decode()
    assert 'data-testid="bulk-typed"' in page
    assert "type their number, <strong>4</strong>, to confirm" in page


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (None, "Type the number of syncs, 4, to confirm a retry of more than 3."),
        ("5", "You typed 5, but 4 syncs are selected: type 4 to confirm."),
        ("four", "“four” is not a number: type the number of syncs."),
        ("²", "“²” is not a number: type the number of syncs."),
    ],
)
def test_a_missing_or_wrong_number_confirms_nothing_and_keeps_what_was_typed(
    client, above_threshold, typed, message
):
    bulk = above_threshold
    with mock.patch.object(fan_out_bulk_task, "delay") as fan_out:
        answer = review_post(client, bulk, confirm=True, typed=typed)
    assert answer.status_code == 400
    page = answer.content.decode()
    assert message in page
    assert 'data-testid="bulk-typed-error"' in page
    if typed:
        assert f'name="typed" value="{typed}"' in page
    assert fan_out.call_count == 0
    bulk.refresh_from_db()
    assert bulk.state == "draft" and bulk.members.filter(included=True).count() == 4
    assert not RetryRequest.objects.exists()


@pytest.mark.parametrize("typed", ["4", " 4 ", "0,004"])
def test_the_right_number_confirms(client, above_threshold, typed):
    requested = _confirm_and_fan_out(client, above_threshold, typed=typed)
    assert len(requested) == 4
    above_threshold.refresh_from_db()
    assert above_threshold.planned_syncs == 4


def test_a_wrong_number_keeps_the_choices_made_before(client, above_threshold, settings):
    settings.BULK_RETRY_CONFIRM_THRESHOLD = 2
    bulk = above_threshold
    left_out = str(bulk.members.order_by("pk").first().sync.sync_id)
    assert review_post(client, bulk, leave_out=[left_out]).status_code == 302
    answer = review_post(client, bulk, confirm=True, typed="4")
    assert answer.status_code == 400
    assert "You typed 4, but 3 syncs are selected: type 3 to confirm." in answer.content.decode()
    assert not BulkMember.objects.get(bulk=bulk, sync__sync_id=left_out).included
    requested = _confirm_and_fan_out(client, bulk, typed="3")
    assert left_out not in requested and len(requested) == 3


def test_a_choice_that_brings_the_count_to_the_threshold_needs_no_number(client, above_threshold):
    bulk = above_threshold
    left_out = str(bulk.members.order_by("pk").first().sync.sync_id)
    review_post(client, bulk, leave_out=[left_out])
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-typed"' not in page
    assert len(_confirm_and_fan_out(client, bulk)) == 3


# --- groups ---


def test_a_whole_group_can_be_left_out_and_kept_again(client, lead, db):
    company = make_company()
    for message in ("The account period has closed.", "Tax rate TX-9 is missing."):
        for _ in range(3):
            make_sync(
                company, code=Code.DATA_PUSH_ERROR, items=FAILED * 2,
                error_message=message,
            )  # fmt: skip
    make_sync(company, code=Code.SERVER_ERROR, items=FAILED)
    client.force_login(lead)
    bulk = open_preview(client, "range=7d")
    groups = bulk_retry.groups(bulk)
    assert [(g.status_code, g.syncs, g.items) for g in groups] == [
        (5130, 3, 6),
        (5130, 3, 6),
        (5000, 1, 1),
    ]
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert "Tax rate TX-9 is missing." in page and "The account period has closed." in page
    tax = next(g for g in groups if "Tax rate" in g.message)
    review_post(client, bulk, extra={"leave_group": tax.key})
    assert bulk_retry.kept_totals(bulk).syncs == 4
    review_post(client, bulk, extra={"keep_group": tax.key})
    assert bulk_retry.kept_totals(bulk).syncs == 7
    review_post(client, bulk, extra={"leave_group": tax.key})
    requested = _confirm_and_fan_out(client, bulk)
    assert len(requested) == 4
    assert not Sync.objects.filter(
        sync_id__in=requested, error_fingerprint=tax.fingerprint
    ).exists()


def test_each_group_shows_its_cause_first_with_the_full_message_a_click_away(client, lead, db):
    wrapper = "An error occurred in a downstream service. Correlation ID: {}. Message:  "
    company = make_company()
    for n in range(3):
        make_sync(
            company, code=Code.DATA_PUSH_ERROR, items=FAILED,
            error_message=wrapper.format(f"0b7f5f7e-6f0c-4e59-9d7a-0d2a3b2c1f0{n}")
            + f"Invalid Reference Id: Accounts element id {40 + n} not found",
        )  # fmt: skip
    # A sync with an exception message and no error message: grouped, and shown, by it.
    exception = wrapper.format("x") + "An unexpected error occurred while running the sync."
    make_sync(
        company, code=Code.SERVER_ERROR, items=FAILED, exception_message=exception,
        error_fingerprint=fingerprint(exception),
    )  # fmt: skip
    client.force_login(lead)
    bulk = open_preview(client, "range=7d")
    groups = bulk_retry.groups(bulk)
    assert [(g.status_code, g.syncs) for g in groups] == [(5130, 3), (5000, 1)]
    assert groups[1].message == exception
    review = reverse("bulk-review", args=[bulk.pk])
    for url in (review, f"{review}?group={groups[0].key}"):
        page = client.get(url).content.decode()
        assert re.search(
            r'<details class="message-cause"><summary>Invalid Reference Id: Accounts element id '
            r"4\d not found</summary><pre>An error occurred in a downstream service\. ",
            page,
        ), url
    page = client.get(review).content.decode()
    assert "<summary>An unexpected error occurred while running the sync.</summary>" in page


@pytest.mark.system  # takes seconds (120 syncs, pages of 100): `make test` and CI run it
def test_a_large_preview_shows_groups_with_counts_and_pages_their_syncs(client, lead, db):
    company = make_company()
    syncs = [
        make_sync(company, code=Code.DATA_PUSH_ERROR, items=FAILED, items_outstanding=1)
        for _ in range(120)
    ]
    client.force_login(lead)
    bulk = open_preview(client, "range=7d")
    first = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert len(listed_syncs(first)) == 10  # a sample of the group, with a link to the rest
    assert "Review all 120 syncs of this group" in first
    group = bulk_retry.groups(bulk)[0]
    url = reverse("bulk-review", args=[bulk.pk])
    one = client.get(url, {"group": group.key}).content.decode()
    two = client.get(url, {"group": group.key, "page": 2}).content.decode()
    assert len(listed_syncs(one)) == 100 and len(listed_syncs(two)) == 20
    assert listed_syncs(one) | listed_syncs(two) == {str(s.sync_id) for s in syncs}
    # Unticking on page two leaves out that sync only.
    member = BulkMember.objects.filter(bulk=bulk).order_by("-pk").first()
    answer = client.post(
        url,
        {"key": str(bulk.key), "expected": 120, "group": group.key, "page": 2,
         "shown": [member.pk], "update": "1"},
    )  # fmt: skip
    assert answer["Location"] == f"{url}?group={group.key.replace(':', '%3A')}&page=2"
    assert bulk_retry.kept_totals(bulk).syncs == 119
    assert client.get(url, {"group": "5130:not-a-group"}).status_code == 404
    # Digits that are not decimal digits ("²" is a digit to Python, not to int()).
    assert client.get(url, {"group": "²:x"}).status_code == 200  # not a group key: no group
    assert len(listed_syncs(client.get(url, {"group": group.key, "page": "²"}).content.decode()))

    from dashboard.bulk_views import _page_number

    assert [_page_number(raw) for raw in ("²", "٣", "3", "", None)] == [1, 3, 3, 1, 1]


# --- cancel ---


def _confirmed(client, lead, zone: str = ZONES[0]) -> BulkRetry:
    _lead_in(client, lead, zone)
    bulk = open_preview(client, QUERY)
    with mock.patch.object(fan_out_bulk_task, "delay"):
        assert review_post(client, bulk, confirm=True).status_code == 302
    bulk.refresh_from_db()
    assert bulk.state == "queued"
    return bulk


def test_cancel_before_the_fan_out_requests_nothing_and_counts_every_member_skipped(
    client, lead, edge_syncs
):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    answer = client.post(reverse("bulk-cancel", args=[bulk.pk]))
    assert answer["Location"] == reverse("bulk-detail", args=[bulk.pk])
    with mock.patch.object(run_retry_task, "delay"):
        assert fan_out_bulk_task(bulk.pk) == {"requested": 0, "skipped": 0}
    bulk.refresh_from_db()
    assert bulk.state == "cancelled" and bulk.cancelled_by == lead and bulk.cancelled_at
    assert not RetryRequest.objects.filter(bulk=bulk).exists()
    figures = bulk_retry.report(bulk)
    assert figures.not_requested == figures.skipped == figures.settled == 4
    assert bulk_retry.is_finished(bulk, figures)
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-cancelled"' in page
    assert "4 syncs never requested, 0 requests skipped" in page
    assert page.count("not requested: cancelled") == 4
    assert 'data-testid="cancel-bulk"' not in page


def test_cancel_skips_requests_not_yet_posted_and_lets_posted_ones_go_on(client, lead, edge_syncs):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    with mock.patch.object(run_retry_task, "delay"):
        fan_out_bulk_task(bulk.pk)
    requests = list(RetryRequest.objects.filter(bulk=bulk).order_by("pk"))
    assert len(requests) == 4
    # One is being sent by a worker (its POST is out), one has been sent; one was
    # claimed but not posted yet and one waits in the queue: those two are skipped.
    RetryRequest.objects.filter(pk=requests[0].pk).update(
        state="running", started_at=timezone.now(), attempts=1, posted_at=timezone.now()
    )
    RetryRequest.objects.filter(pk=requests[2].pk).update(
        state="running", started_at=timezone.now(), attempts=1
    )
    RetryRequest.objects.filter(pk=requests[1].pk).update(
        state="submitted", started_at=timezone.now(), attempts=1, submitted_at=timezone.now()
    )
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert 'data-testid="cancel-bulk"' in page
    client.post(reverse("bulk-cancel", args=[bulk.pk]))
    states = dict(RetryRequest.objects.filter(bulk=bulk).values_list("pk", "state"))
    assert [states[r.pk] for r in requests] == ["running", "submitted", "skipped", "skipped"]
    assert RetryRequest.objects.get(pk=requests[2].pk).reason == bulk_retry.CANCELLED_REASON
    # The worker's delivery for a skipped request finds nothing to claim.
    assert run_retry_task(requests[3].pk) == "not claimed"
    figures = bulk_retry.report(bulk)
    assert figures.skipped == 2 and figures.active == 2 and figures.not_requested == 0


def test_a_cancel_mid_fan_out_stops_the_members_not_yet_requested(
    client, lead, edge_syncs, monkeypatch
):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    monkeypatch.setattr("dashboard.bulk_retry.run.FAN_OUT_BATCH", 1)
    real = bulk_retry.run.retry.request_retry
    made: list[int] = []

    def then_cancel(**kwargs):
        answer = real(**kwargs)
        made.append(answer[0].pk)
        if len(made) == 2:  # the lead presses Cancel while the second batch is made
            bulk_retry.cancel(bulk.pk, user=lead)
        return answer

    with (
        mock.patch.object(bulk_retry.run.retry, "request_retry", side_effect=then_cancel),
        mock.patch.object(run_retry_task, "delay"),
    ):
        assert fan_out_bulk_task(bulk.pk)["requested"] == 2
    assert RetryRequest.objects.filter(bulk=bulk).count() == 2
    assert set(RetryRequest.objects.filter(bulk=bulk).values_list("state", flat=True)) == {
        "skipped"
    }
    bulk.refresh_from_db()
    assert bulk.state == "cancelled"
    figures = bulk_retry.report(bulk)
    assert figures.not_requested == 2 and figures.skipped == 4 and figures.active == 0


def test_cancel_needs_post_and_the_bulk_permission(client, lead, runner, edge_syncs):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    assert client.get(reverse("bulk-cancel", args=[bulk.pk])).status_code == 405
    client.force_login(runner)
    assert client.post(reverse("bulk-cancel", args=[bulk.pk])).status_code == 403
    bulk.refresh_from_db()
    assert bulk.state == "queued"


def test_a_bulk_retry_whose_requests_were_all_sent_has_nothing_to_cancel(client, lead, edge_syncs):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    with mock.patch.object(run_retry_task, "delay"):
        fan_out_bulk_task(bulk.pk)
    RetryRequest.objects.filter(bulk=bulk).update(
        state="submitted", started_at=timezone.now(), submitted_at=timezone.now()
    )
    answer = client.post(reverse("bulk-cancel", args=[bulk.pk]), follow=True)
    assert "nothing left to cancel" in answer.content.decode()
    bulk.refresh_from_db()
    assert bulk.state == "fanned_out"


# --- the report ---


def test_the_report_sums_item_outcomes_and_names_the_sync_still_running(client, lead, db):
    """The issue's bulk retry of 11 syncs: "10 of 11 settled" names the one still running."""
    company = make_company(name="Acme Ltd")
    syncs = [
        make_sync(company, code=Code.DATA_PUSH_ERROR, items=FAILED * 3, items_outstanding=3)
        for _ in range(11)
    ]
    client.force_login(lead)
    bulk = open_preview(client, "range=7d")
    _confirm_and_fan_out(client, bulk)
    requests = list(RetryRequest.objects.filter(bulk=bulk).order_by("pk"))
    assert len(requests) == 11
    # Ten new syncs ended (what settle records): 26 items, 22 complete, 4 failed again.
    outcomes = [(3, 0), (3, 0), (2, 0), (2, 0), (2, 0), (2, 0), (2, 1), (2, 1), (2, 1), (2, 1)]
    for request, (completed, failed) in zip(requests, outcomes, strict=False):
        RetryRequest.objects.filter(pk=request.pk).update(
            state="completed", item_count=completed + failed, pushed=completed + failed,
            completed=completed, failed_again=failed, not_repushed=0,
        )  # fmt: skip
        Sync.objects.filter(pk=request.sync_id).update(items_outstanding=failed)
    # The eleventh's new sync has been running for twelve minutes.
    running = requests[-1]
    new_sync = make_sync(
        company, code=Code.LONG_RUNNING, ago=timedelta(minutes=12), retry_of=running.sync
    )
    RetryRequest.objects.filter(pk=running.pk).update(
        state="submitted", new_sync_id=new_sync.sync_id,
        submitted_at=timezone.now() - timedelta(minutes=12),
    )  # fmt: skip

    figures = bulk_retry.report(bulk)
    assert figures.sentence == (
        "29 items: 22 now complete, 4 failed again, 3 awaiting their new sync; "
        "5 syncs still outstanding"
    )
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert "10 of 11 settled" in page
    assert figures.sentence in page
    long = page.split('data-testid="bulk-running-long"')[1].split("</ul>")[0]
    assert str(running.sync.sync_id)[:10] in long and "long running (1010)" in long
    assert page.count('data-testid="member-running-long"') == 1
    bulk.refresh_from_db()
    assert bulk.state == "fanned_out" and not bulk_retry.is_finished(bulk, figures)
    for sync in syncs:
        assert reverse("sync-detail", args=[sync.sync_id]) in page

    # Its new sync ends with the three items failed again.
    RetryRequest.objects.filter(pk=running.pk).update(
        state="completed", pushed=3, completed=0, failed_again=3, not_repushed=0
    )
    figures = bulk_retry.report(bulk)
    assert figures.sentence == (
        "29 items: 22 now complete, 7 failed again; 5 syncs still outstanding"
    )
    bulk.refresh_from_db()
    assert bulk_retry.is_finished(bulk, figures)
    page = client.get(reverse("bulk-detail", args=[bulk.pk])).content.decode()
    assert "<strong>Finished.</strong> " + figures.sentence in page
    assert "11 of 11 settled" in page and 'data-testid="bulk-running-long"' not in page


def test_a_new_sync_in_progress_over_ten_minutes_or_never_seen_is_named(client, lead, db):
    company = make_company()
    for _ in range(3):
        make_sync(company, code=Code.DATA_PUSH_ERROR, items=FAILED, items_outstanding=1)
    client.force_login(lead)
    bulk = open_preview(client, "range=7d")
    _confirm_and_fan_out(client, bulk)
    slow, unseen, fresh = RetryRequest.objects.filter(bulk=bulk).order_by("pk")
    long_ago = timezone.now() - timedelta(minutes=11)
    slow_sync = make_sync(company, code=Code.IN_PROGRESS, ago=timedelta(minutes=11))
    fresh_sync = make_sync(company, code=Code.IN_PROGRESS, ago=timedelta(minutes=2))
    for request, new_sync_id in (
        (slow, slow_sync.sync_id),
        (unseen, "3f1c8e4e-1111-4a4a-9a9a-000000000001"),
        (fresh, fresh_sync.sync_id),
    ):
        RetryRequest.objects.filter(pk=request.pk).update(
            state="submitted", new_sync_id=new_sync_id, submitted_at=long_ago
        )
    named, count = bulk_retry.running_long(bulk, limit=50)
    assert count == 2
    assert [r.request.pk for r in named] == [slow.pk, unseen.pk]
    assert "in progress for 11 min" in named[0].note
    assert "not seen yet" in named[1].note


# --- drafts never confirmed ---


def test_old_drafts_cannot_be_confirmed_and_are_swept_by_the_follow_up(client, lead, edge_syncs):
    edge_syncs(ZONES[0])
    _lead_in(client, lead, ZONES[0])
    old = open_preview(client, QUERY)
    fresh = open_preview(client, QUERY)
    BulkRetry.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - bulk_retry.DRAFT_LIFETIME - timedelta(minutes=1)
    )
    answer = review_post(client, old, confirm=True)
    assert answer.status_code == 400
    assert "open a fresh one" in answer.content.decode()
    with mock.patch("dashboard.tasks.Upstream"):
        follow_retries_task()
    assert not BulkRetry.objects.filter(pk=old.pk).exists()
    assert not BulkMember.objects.filter(bulk_id=old.pk).exists()
    assert BulkRetry.objects.filter(pk=fresh.pk, state="draft").exists()


def test_drafts_stay_out_of_the_admins_list_of_bulk_retries(client, lead, edge_syncs):
    from tests.support.users import make_user

    edge_syncs(ZONES[0])
    confirmed = _confirmed(client, lead)
    draft = open_preview(client, QUERY)
    admin = make_user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    listing = client.get(reverse("admin:dashboard_bulkretry_changelist")).content.decode()
    assert f"/admin/dashboard/bulkretry/{confirmed.pk}/" in listing
    assert f"/admin/dashboard/bulkretry/{draft.pk}/" not in listing


def test_a_fan_out_whose_task_was_lost_is_queued_again_by_the_follow_up(client, lead, edge_syncs):
    edge_syncs(ZONES[0])
    bulk = _confirmed(client, lead)
    assert bulk_retry.stalled_fan_outs(limit=10) == []
    BulkRetry.objects.filter(pk=bulk.pk).update(confirmed_at=timezone.now() - timedelta(minutes=11))
    with (
        mock.patch("dashboard.tasks.Upstream"),
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
    ):
        follow_retries_task()
    fan_out.assert_called_once_with(bulk.pk)
