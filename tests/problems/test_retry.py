"""Retry a problem's outstanding items: one reviewable, frozen bulk retry scoped to the problem.

Its requests name only the syncs where the problem's items last failed, and
the preview lists the other problems' items those syncs hold, which Codat
re-pushes too. A double click opens one preview and confirms one bulk retry.
"""

from __future__ import annotations

import threading
import uuid
from unittest import mock

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory, TestCase
from django.urls import reverse

from dashboard import bulk_retry, retention, retry
from dashboard.models import BulkAlong, BulkMember, BulkRetry, ProblemActivity, RetryRequest
from dashboard.problems import lifecycle, retries
from dashboard.tasks import fan_out_bulk_task, run_retry_task
from dashboard.vocabulary import ProblemEvent, ProblemState, PurgeReason
from tests.support.bulk import review_post
from tests.support.factories import make_company
from tests.support.problems import (
    CLOSED,
    TAX,
    failed_sync,
    open_problem_preview,
    opened,
    problem_of,
    retry_of,
    shared_syncs,
    tids,
)
from tests.support.services import only_on_postgresql

pytestmark = pytest.mark.django_db


def _ids(*syncs) -> list[str]:
    return sorted(str(s.sync_id) for s in syncs)


def _confirm_and_fan_out(client, bulk: BulkRetry) -> None:
    with (
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
        mock.patch.object(run_retry_task, "delay"),
    ):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = review_post(client, bulk, confirm=True)
        assert response.status_code == 302, response.content.decode()[:2000]
        assert response["Location"] == reverse("bulk-detail", args=[bulk.pk])
        fan_out.assert_called_once_with(bulk.pk)
        fan_out_bulk_task(bulk.pk)


def test_the_retry_names_only_the_syncs_where_the_problems_items_last_failed(client, lead):
    estate = shared_syncs()
    s, i = estate.syncs, estate.items
    assert estate.closed.items_outstanding == 5
    client.force_login(lead)
    bulk = opened(open_problem_preview(client, estate.closed))
    assert bulk.problem == estate.closed and bulk.state == "draft"
    assert bulk.description.startswith(f"Problem #{estate.closed.pk}: 5130 (directCosts) · ")
    members = {m.sync_id: m for m in BulkMember.objects.filter(bulk=bulk)}
    # One member per chain holding the problem's items; o2 (tax only) and o7 (completed) none.
    assert set(members) == {s["o1"].pk, s["o3"].pk, s["o5"].pk, s["o6"].pk}
    assert {pk: m.named for pk, m in members.items()} == {
        s["o1"].pk: _ids(s["o1"]),
        s["o3"].pk: _ids(s["r3"]),  # where p3 last failed, not the original
        s["o5"].pk: _ids(s["o5"]),  # not r5, which holds only a tax item
        s["o6"].pk: _ids(s["o6"]),
    }
    assert sorted(members[s["o1"].pk].transaction_ids) == sorted([str(i["p1"]), str(i["p2"])])
    assert members[s["o5"].pk].transaction_ids == [str(i["p5"])]
    # A retry of the whole chain would have named r5 too.
    assert retry.plan(s["o5"]).sync_ids == _ids(s["o5"], s["r5"])

    _confirm_and_fan_out(client, bulk)
    requests = {r.sync_id: r for r in RetryRequest.objects.filter(bulk=bulk)}
    assert {pk: sorted(r.sync_ids) for pk, r in requests.items()} == {
        pk: m.named for pk, m in members.items()
    }
    assert sorted(requests[s["o1"].pk].failed_items) == sorted([str(i["p1"]), str(i["p2"])])
    assert requests[s["o3"].pk].failed_items == [str(i["p3"])]
    # Each named sync holds one item of another problem: it goes along.
    assert {pk: r.other_items for pk, r in requests.items()} == dict.fromkeys(members, 1)
    assert sum(r.item_count for r in requests.values()) == 5


def test_the_preview_lists_the_other_problems_items_that_go_along(client, lead):
    estate = shared_syncs()
    s = estate.syncs
    client.force_login(lead)
    bulk = opened(open_problem_preview(client, estate.closed))
    along = {
        (row.sync_id, row.problem_id): row.items for row in BulkAlong.objects.filter(bulk=bulk)
    }
    assert along == {
        (s["o1"].pk, estate.tax.pk): 1,
        (s["r3"].pk, estate.tax.pk): 1,
        (s["o5"].pk, estate.tax.pk): 1,
        (s["o6"].pk, estate.archived.pk): 1,
    }
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert 'data-testid="bulk-syncs">4<' in page
    assert 'data-testid="bulk-items">5<' in page
    assert 'data-testid="bulk-named">4<' in page
    assert 'data-testid="along-items">4<' in page
    assert f'data-problem="{estate.tax.pk}"' in page and TAX in page
    assert f'data-problem="{estate.archived.pk}"' in page
    assert page.count('data-testid="member-along"') == 4
    assert f'data-named="{s["r3"].sync_id}"' in page
    assert f'data-named="{s["r5"].sync_id}"' not in page
    assert reverse("sync-history") not in page.split('class="crumbs"')[1].split("</p>")[0]

    # Leaving o6 out leaves out what goes along with it.
    review_post(client, bulk, leave_out=[s["o6"].sync_id])
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert 'data-testid="along-items">3<' in page
    assert f'data-problem="{estate.archived.pk}"' not in page


def test_a_problem_alone_in_its_syncs_says_nothing_goes_along(client, lead):
    company = make_company()
    failed_sync(company, CLOSED, CLOSED, ago=2)
    problem = problem_of(company, tids(failed_sync(company, CLOSED, ago=1))[0])
    client.force_login(lead)
    bulk = opened(open_problem_preview(client, problem))
    page = client.get(reverse("bulk-review", args=[bulk.pk])).content.decode()
    assert 'data-testid="along-none"' in page
    assert not BulkAlong.objects.exists()


def test_a_double_click_opens_one_preview_and_confirms_one_retry(client, lead):
    estate = shared_syncs()
    client.force_login(lead)
    key = str(uuid.uuid4())
    first = opened(open_problem_preview(client, estate.closed, key))
    second = opened(open_problem_preview(client, estate.closed, key))
    assert first.pk == second.pk
    assert BulkRetry.objects.count() == 1
    assert BulkMember.objects.count() == 4
    with (
        mock.patch.object(fan_out_bulk_task, "delay") as fan_out,
        mock.patch.object(run_retry_task, "delay"),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        review_post(client, first, confirm=True)
        review_post(client, first, confirm=True, expected=4)
    assert fan_out.call_count == 1
    # The same button once more, after it was confirmed: its retry, not another.
    again = open_problem_preview(client, estate.closed, key)
    assert again.status_code == 302
    assert client.get(again["Location"])["Location"] == reverse("bulk-detail", args=[first.pk])
    activity = ProblemActivity.objects.get(problem=estate.closed, event=ProblemEvent.RETRY)
    assert activity.user == lead
    assert activity.detail == {"bulk": first.pk, "items": 5, "syncs": 4, "companies": 2}
    assert activity.text == f"Bulk retry {first.pk}: 5 items in 4 syncs of 2 companies"


def test_a_runner_sees_who_may_and_is_refused(client, runner, viewer):
    estate = shared_syncs()
    client.force_login(runner)
    refused = open_problem_preview(client, estate.closed)
    assert refused.status_code == 403
    page = refused.content.decode()
    assert "Support lead" in page and "one sync at a time" in page
    denied = BulkRetry.objects.get()
    assert denied.state == "denied" and denied.problem == estate.closed
    assert not BulkMember.objects.exists()
    client.force_login(viewer)
    assert open_problem_preview(client, estate.closed).status_code == 403
    assert client.get(reverse("problem-retry", args=[estate.closed.pk])).status_code == 405


def test_bad_requests_say_what_is_wrong(client, lead):
    estate = shared_syncs()
    client.force_login(lead)
    url = reverse("problem-retry", args=[estate.closed.pk])
    unknown = reverse("problem-retry", args=[999_999])
    assert client.post(unknown, {"key": str(uuid.uuid4())}).status_code == 404
    incomplete = client.post(url, {"key": "not-a-token"})
    assert incomplete.status_code == 400
    assert "The form was incomplete" in incomplete.content.decode()
    # Merged: the target is the one to retry.
    lifecycle.merge(estate.tax.pk, estate.archived.pk, lead)
    merged = open_problem_preview(client, estate.tax)
    assert merged.status_code == 409
    assert f"was merged into problem #{estate.archived.pk}" in merged.content.decode()
    # Nothing outstanding: said, and nothing made.
    company = make_company()
    original = failed_sync(company, "The bank feed is disconnected.", ago=2)
    problem = problem_of(company, tids(original)[0])
    retry_of(original, dict.fromkeys(tids(original)), ago=1)
    problem.refresh_from_db()
    assert problem.items_outstanding == 0 and problem.state == ProblemState.RESOLVED
    nothing = open_problem_preview(client, problem)
    assert nothing.status_code == 200
    assert "No item of this problem is outstanding" in nothing.content.decode()
    assert not BulkRetry.objects.filter(problem__in=[problem, estate.tax]).exists()


def test_a_second_retry_waits_for_the_first_and_too_many_syncs_are_refused(client, lead, settings):
    estate = shared_syncs()
    client.force_login(lead)
    settings.BULK_RETRY_MAX_SYNCS = 3
    wide = open_problem_preview(client, estate.closed)
    assert wide.status_code == 409
    assert "more than 3 syncs" in wide.content.decode()
    settings.BULK_RETRY_MAX_SYNCS = 100
    bulk = opened(open_problem_preview(client, estate.closed))
    _confirm_and_fan_out(client, bulk)
    busy = open_problem_preview(client, estate.closed)
    assert busy.status_code == 409
    assert f"under way (bulk retry {bulk.pk})" in busy.content.decode()


def test_the_worker_asks_only_for_the_frozen_items_still_outstanding(client, lead):
    estate = shared_syncs()
    s, i = estate.syncs, estate.items
    client.force_login(lead)
    bulk = opened(open_problem_preview(client, estate.closed))
    # After the preview: p1 is pushed by someone else's retry, and so is every item of o6.
    retry_of(s["o1"], {i["p1"]: None}, ago=0.5)
    retry_of(s["o6"], {i["p6"]: None, i["c1"]: None}, ago=0.5)
    # And another failure of the problem arrives: not in the frozen preview.
    failed_sync(estate.companies[0], CLOSED, ago=0.2)
    _confirm_and_fan_out(client, bulk)
    requests = {r.sync_id: r for r in RetryRequest.objects.filter(bulk=bulk)}
    assert requests[s["o1"].pk].failed_items == [str(i["p2"])]
    skipped = requests[s["o6"].pk]
    assert skipped.state == "skipped" and skipped.reason == retry.NOTHING_LEFT
    assert sum(r.item_count for r in requests.values()) == 3


def _settle(request: RetryRequest, pushed: dict[uuid.UUID, str | None]) -> None:
    """The upstream's new sync for a request: these outcomes, then the request settles."""
    new = retry_of(request.sync, pushed, ago=0.1)
    RetryRequest.objects.filter(pk=request.pk).update(
        state="submitted", new_sync_id=new.sync_id, posted_at=new.sync_utc
    )
    request.refresh_from_db()
    assert retry.settle(request).state == "completed"


def test_the_summary_tells_each_retrys_outcome_and_whether_the_cause_changed(client, lead):
    estate = shared_syncs()
    s, i = estate.syncs, estate.items
    client.force_login(lead)
    assert retries.summary(estate.closed)["retries"] == []
    bulk = opened(open_problem_preview(client, estate.closed))
    _confirm_and_fan_out(client, bulk)
    running = retries.summary(estate.closed)
    assert running["running"].bulk == bulk and not running["retryable"]
    requests = {r.sync_id: r for r in RetryRequest.objects.filter(bulk=bulk)}
    # p1 completes, p2 fails again as before, p3 fails with another cause, p5 and p6 complete.
    _settle(requests[s["o1"].pk], {i["p1"]: None, i["p2"]: CLOSED, i["q1"]: TAX})
    _settle(requests[s["o3"].pk], {i["p3"]: TAX, i["q4"]: TAX})
    _settle(requests[s["o5"].pk], {i["p5"]: None})
    _settle(requests[s["o6"].pk], {i["p6"]: None, i["c1"]: None})
    estate.closed.refresh_from_db()
    assert estate.closed.items_outstanding == 1
    found = retries.summary(estate.closed)
    assert found["running"] is None and found["retryable"]
    (last,) = found["retries"]
    assert found["last"] == last and last.bulk == bulk
    assert (last.items, last.completed, last.failed_again, last.pending) == (5, 3, 2, 0)
    assert (last.same_cause, last.other_cause) == (1, 1)
    assert last.sentence == "3 complete, 2 failed again, cause unchanged for 1, changed for 1"


def test_the_partial_offers_the_button_to_leads_and_says_who_may_to_others(lead, runner, viewer):
    estate = shared_syncs()

    def rendered(user) -> str:
        request = RequestFactory().get("/")
        request.user = user
        context = {"problem": estate.closed, "retry_summary": retries.summary(estate.closed)}
        return render_to_string("dashboard/_problem_retry.html", context, request=request)

    page = rendered(lead)
    assert 'data-testid="problem-retry-button"' in page
    assert "Retry this problem's outstanding items (5)" in page
    assert f'action="{reverse("problem-retry", args=[estate.closed.pk])}"' in page
    assert "data-disable-on-submit" in page and "csrfmiddlewaretoken" in page
    assert 'data-testid="problem-retry-hint"' not in page
    for user, advice in ((runner, True), (viewer, False)):
        page = rendered(user)
        assert 'data-testid="problem-retry-button"' not in page
        assert "Support lead role" in page
        assert ("one sync at a time" in page) is advice
    # Each page view its own token: a double click on one page opens one preview.
    tokens = {rendered(lead).split('name="key" value="')[1].split('"')[0] for _ in range(2)}
    assert len({uuid.UUID(token) for token in tokens}) == 2


def test_a_purge_or_an_old_preview_takes_what_goes_along_and_counts_only_members(client, lead):
    estate = shared_syncs()
    first, second = estate.companies
    client.force_login(lead)
    bulk = opened(open_problem_preview(client, estate.closed))
    assert BulkAlong.objects.filter(bulk=bulk).count() == 4
    record, _ = retention.request_purge(
        company_id=first.company_id, requested_by="lead", reason=PurgeReason.ERASURE_REQUEST
    )
    record = retention.purge.purge(record.pk)
    assert record.removed["bulk retry members"] == 3  # o1, o3 and o5; not their 3 along
    assert list(BulkAlong.objects.values_list("member__company", flat=True)) == [second.pk]
    BulkRetry.objects.filter(pk=bulk.pk).update(
        created_at=bulk.created_at - 2 * bulk_retry.DRAFT_LIFETIME
    )
    assert bulk_retry.sweep_drafts() == 1
    assert not BulkAlong.objects.exists() and not BulkMember.objects.exists()


@only_on_postgresql("two requests at once need concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_the_same_button_posted_twice_at_once_opens_one_preview(lead):
    from django.db import connection

    estate = shared_syncs()
    key = str(uuid.uuid4())
    barrier = threading.Barrier(3)
    answers: list[str] = []

    def press() -> None:
        client = Client()
        client.force_login(lead)
        barrier.wait()
        try:
            answers.append(open_problem_preview(client, estate.closed, key)["Location"])
        finally:
            connection.close()

    threads = [threading.Thread(target=press) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bulk = BulkRetry.objects.get()
    assert answers == [reverse("bulk-review", args=[bulk.pk])] * 3
    assert BulkMember.objects.filter(bulk=bulk).count() == 4
