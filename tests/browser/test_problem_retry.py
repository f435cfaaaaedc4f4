"""A lead retries a problem's outstanding items in Chromium, and the problem resolves.

Dashboard → Top problems → the problem's page → Retry this problem's outstanding items →
the preview (the syncs named, and the other problem's items that go along) →
confirm → the worker's tasks (eager) and the sandbox's new syncs → the report
says the problem is resolved, and so do the problem's retries. Screenshots of
each step go to `artifacts/screenshots/problem-retry-*.png`.

The problem is reached as a support person would: from the dashboard's Top
problems to the problem's page, whose retries part (`_problem_retry.html`)
holds the button.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from dashboard import ingest
from dashboard.models import BulkRetry, Problem, ProblemActivity, TransactionState
from dashboard.tasks import fan_out_bulk_task, follow_retries_task
from dashboard.vocabulary import ProblemEvent, ProblemState
from tests.support.browser import login, screenshot
from tests.support.scenario import CLOSED, failed_company

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]

TAX = "Tax rate is not valid for this account."


def test_a_lead_retries_a_problem_and_sees_it_resolve(
    page: Page, lead, aimed, in_process_upstream, sandbox_config, celery_eager
):
    sandbox_config.retry_success_rate = 1.0  # the cause is fixed: every re-push completes
    sandbox_config.long_running_rate = 0
    sandbox_config.save()
    harbour = failed_company(6, name="Harbour Coffee Ltd")
    # Northwind's failed sync holds items of two problems: 3 closed-period, 2 tax-rate.
    northwind = failed_company(5, name="Northwind Traders", messages=[CLOSED, TAX])
    for upstream in (harbour, northwind):
        company = ingest.ensure_company(in_process_upstream, str(upstream.company_id))
        ingest.refresh_company(in_process_upstream, company)
    problem = Problem.objects.get(cause__icontains="period")
    tax = Problem.objects.get(cause__icontains="tax")
    assert (problem.items_outstanding, tax.items_outstanding) == (9, 2)

    login(page, lead.username)
    expect(page.locator('[data-stat="outstanding_items"] .n')).to_have_text("11")
    screenshot(page, "problem-retry-1-dashboard")

    top = page.get_by_test_id("top-problems")
    top.locator(f'a[href="/problems/{problem.pk}/"]').first.click()
    expect(page).to_have_url(re.compile(rf"/problems/{problem.pk}/$"))
    expect(page.get_by_test_id("state")).to_have_text("Open")
    button = page.get_by_test_id("problem-retry-button")
    expect(button).to_have_text("Retry this problem's outstanding items (9)")
    screenshot(page, "problem-retry-2-problem")

    button.click()
    expect(page).to_have_url(re.compile(r"/retries/bulk/\d+/review/$"))
    expect(page.get_by_test_id("bulk-description")).to_contain_text(f"Problem #{problem.pk}")
    expect(page.get_by_test_id("bulk-syncs")).to_have_text("2")
    expect(page.get_by_test_id("bulk-items")).to_have_text("9")
    expect(page.get_by_test_id("bulk-named")).to_have_text("2")
    expect(page.get_by_test_id("along-items")).to_have_text("2")
    expect(page.get_by_test_id("along-problem")).to_contain_text(TAX)
    screenshot(page, "problem-retry-3-review")

    with mock.patch.object(fan_out_bulk_task, "delay") as fan_out:
        page.get_by_test_id("confirm-bulk").click()
        expect(page).to_have_url(re.compile(r"/retries/bulk/\d+/$"))
    bulk = BulkRetry.objects.get(problem=problem, state="queued")
    fan_out.assert_called_once_with(bulk.pk)
    # The worker: one request per sync, each posted to the sandbox, whose new syncs end
    # at once; then the follow-up reads them, as their webhooks would have.
    fan_out_bulk_task.delay(bulk.pk)
    follow_retries_task()
    expect(page.get_by_test_id("bulk-outcome")).to_contain_text("Finished.", timeout=15_000)
    expect(page.get_by_test_id("bulk-problem-state")).to_have_text("Resolved")
    screenshot(page, "problem-retry-4-report")

    problem.refresh_from_db()
    tax.refresh_from_db()
    assert problem.state == ProblemState.RESOLVED and problem.items_outstanding == 0
    # The tax items went along, and were pushed too.
    assert tax.state == ProblemState.RESOLVED
    assert not TransactionState.objects.filter(outstanding=True).exists()
    assert ProblemActivity.objects.filter(problem=problem, event=ProblemEvent.RETRY).count() == 1

    page.goto(f"/problems/{problem.pk}/")
    expect(page.get_by_test_id("state")).to_have_text("Resolved")
    expect(page.get_by_test_id("problem-last-retry")).to_have_text(
        "Last retry: 9 complete, 0 failed again."
    )
    expect(page.get_by_test_id("problem-retry-nothing")).to_be_visible()
    expect(page.get_by_test_id("problem-retry-row")).to_have_count(1)
    screenshot(page, "problem-retry-5-resolved")
