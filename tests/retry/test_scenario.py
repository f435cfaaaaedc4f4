"""The question support asks all day, end to end through the sandbox: what is still broken,
and did my fix work?

A sync with 14 failed items; a retry completes 7 and 7 fail again; a second
retry completes the rest. After each step the pages read the current state:
outstanding items, the Retry button's count, the failing companies and the
streak (a retry chain is one attempt), and finally *Resolved*.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.urls import reverse

from dashboard import ingest, selectors
from dashboard import models as mirror
from dashboard.forms import SyncFilterForm
from dashboard.tasks import follow_retries_task, run_retry_task
from sandbox import models as sb
from sandbox import services
from tests.support.scenario import failed_company


def _stat(page: str, name: str) -> int:
    found = re.search(rf'data-stat="{name}"><span class="n">([\d,]+)<', page)
    assert found, name
    return int(found.group(1).replace(",", ""))


def _failing(company: mirror.Company) -> int:
    """The company's failed attempts in the dashboard's failing companies (0: not listed)."""
    form = SyncFilterForm({"range": "7d"})
    assert form.is_valid()
    ranked = selectors.summary(form.filters()).failing_companies
    return next((row["failed"] for row in ranked if row["company"]["pk"] == company.pk), 0)


def _retry(client, sync: mirror.Sync, *, complete: int) -> mirror.RetryRequest:
    """Click Retry and confirm; the worker posts; the sandbox ends the new sync as scripted."""
    services.script_next_retry(
        sb.Company.objects.get(company_id=sync.company.company_id), complete=complete
    )
    confirm = client.get(reverse("sync-retry", args=[sync.sync_id])).content.decode()
    key = re.search(r'name="key" value="([^"]+)"', confirm).group(1)
    response = client.post(reverse("sync-retry", args=[sync.sync_id]), {"key": key})
    assert response.status_code == 302
    request = mirror.RetryRequest.objects.get(key=uuid.UUID(key))
    run_retry_task(request.pk)
    request.refresh_from_db()
    assert request.state == "submitted", request.reason
    services.finalize_sync(sb.Sync.objects.get(sync_id=request.new_sync_id).pk)
    follow_retries_task()
    request.refresh_from_db()
    assert request.state == "completed"
    return request


@pytest.mark.parametrize("repush", ["unpushed", "named"])
def test_retry_until_resolved_reads_as_state_not_history(
    client, runner, aimed, in_process_upstream, sandbox_config, repush
):
    # `named`: a strict upstream re-pushes every failed item of the syncs named,
    # even one a later retry completed; naming the tips must still push nothing twice.
    sandbox_config.retry_repush = repush
    sandbox_config.save()
    upstream_company = failed_company(items=14)
    company = ingest.ensure_company(in_process_upstream, str(upstream_company.company_id))
    ingest.refresh_company(in_process_upstream, company)
    original = mirror.Sync.objects.get(company=company, status_code=5130)
    company.refresh_from_db()
    assert (original.items_failed, original.items_outstanding) == (14, 14)
    assert company.failing_streak == 1 and _failing(company) == 1
    client.force_login(runner)
    dashboard = client.get(reverse("summary")).content.decode()
    assert _stat(dashboard, "outstanding_items") == 14

    first = _retry(client, original, complete=7)
    assert (first.pushed, first.completed, first.failed_again, first.not_repushed) == (14, 7, 7, 0)
    original.refresh_from_db()
    company.refresh_from_db()
    assert original.items_outstanding == 7 and original.resolved_at is None
    dashboard = client.get(reverse("summary")).content.decode()
    assert _stat(dashboard, "outstanding_items") == 7
    assert _stat(dashboard, "outstanding_syncs") == 1
    assert _stat(dashboard, "outstanding_companies") == 1
    detail = client.get(reverse("sync-detail", args=[original.sync_id])).content.decode()
    assert "Retry failed items (7)" in detail
    # The retry that failed again is part of the original's attempt, not another one.
    assert company.failing_streak == 1 and _failing(company) == 1
    retry_sync = mirror.Sync.objects.get(sync_id=first.new_sync_id)
    assert retry_sync.retry_of == original and retry_sync.chain_category is None

    # The second retry names where the 7 last failed: the first retry, not the original.
    confirm = client.get(reverse("sync-retry", args=[original.sync_id])).content.decode()
    assert 'data-testid="retry-count">7<' in confirm
    second = _retry(client, original, complete=7)
    assert second.sync_ids == [str(first.new_sync_id)]
    assert (second.pushed, second.completed, second.failed_again) == (7, 7, 0)
    upstream_pushes = Counter(
        sb.Item.objects.filter(
            sync__company=upstream_company, status=sb.ItemStatus.COMPLETED
        ).values_list("transaction_id", flat=True)
    )
    assert max(upstream_pushes.values()) == 1, "a transaction was pushed twice"

    original.refresh_from_db()
    company.refresh_from_db()
    assert original.items_outstanding == 0
    assert str(original.resolved_by.sync_id) == str(second.new_sync_id)
    detail = client.get(reverse("sync-detail", args=[original.sync_id])).content.decode()
    assert 'data-testid="resolved">Resolved</span> by retry' in detail
    assert 'data-testid="retry-button"' not in detail
    dashboard = client.get(reverse("summary")).content.decode()
    assert _stat(dashboard, "outstanding_items") == 0
    assert _failing(company) == 0 and company.failing_streak == 0
    history = client.get(reverse("sync-history") + "?range=all&state=resolved").content.decode()
    assert str(original.sync_id) in history


def test_two_requests_never_name_the_same_sync(client, runner, db):
    """A retry of the original and one of its failed retry would both name the retry."""
    from dashboard import retry
    from tests.support.factories import make_company, make_sync

    company = make_company()
    failed = [(4, "The period is closed.")] * 2
    original = make_sync(company, code=5130, items=failed, ago=timedelta(hours=2))
    tids = list(original.items.values_list("transaction_id", flat=True))
    tip = make_sync(company, code=5130, items=failed, transaction_ids=tids, retry_of=original)
    first, created = retry.request_retry(sync=original, user=runner, key=uuid.uuid4())
    assert created and first.sync_ids == [str(tip.sync_id)]
    second, created = retry.request_retry(sync=tip, user=runner, key=uuid.uuid4())
    assert not created and second.pk == first.pk
    assert mirror.RetryRequest.objects.count() == 1


def test_an_item_pushed_as_two_types_counts_once_and_a_failure_wins(runner, db):
    from dashboard import retry
    from tests.support.factories import make_company, make_sync

    company = make_company()
    original = make_sync(company, code=5130, items=[(4, "closed")], ago=timedelta(hours=2))
    tid = original.items.get().transaction_id
    request, _ = retry.request_retry(sync=original, user=runner, key=uuid.uuid4())
    new = make_sync(company, code=5130, items=[(3, None), (4, "closed")], retry_of=original)
    mirror.PushItem.objects.filter(sync=new, status=4).update(integration_type="bankfeeds")
    mirror.PushItem.objects.filter(sync=new).update(transaction_id=tid)
    outcome = retry.item_outcomes(request, new)
    assert (outcome["pushed"], outcome["completed"], outcome["failed_again"]) == (1, 0, 1)
