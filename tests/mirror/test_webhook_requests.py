"""What a webhook costs the upstream: requests counted in the sandbox's own request log.

The webhook carries its sync's ID, whether it succeeded and its transactions
(status and error message); the receiver's worker reads only what it lacks:
the sync's status (its code, messages and start), and each item's integration
and data type when the mirror does not know them already. Every scenario
ends with the mirror exact for the syncs named (statuses, items, data types).
"""

from __future__ import annotations

import uuid
from collections import Counter
from unittest import mock

import httpx
import pytest

from dashboard import ingest
from dashboard import models as mirror
from dashboard.models import WebhookEvent
from sandbox import models as sb
from sandbox.tasks import deliver_webhook_task
from tests.mirror.test_webhooks import (  # noqa: F401 - fixtures
    consumer,
    finalize_everything_due,
    secret,
    start_expense_sync,
    upstream_is_sandbox,
)
from tests.support.mirror import assert_syncs_mirrored


def _mirror_everything(upstream) -> None:
    for company in ingest.refresh_companies(upstream):
        ingest.refresh_company(upstream, company)


def _requests_since(mark: int) -> Counter[str]:
    """The upstream requests logged after `mark`, by endpoint."""
    kinds: Counter[str] = Counter()
    for path in sb.RequestLog.objects.filter(pk__gt=mark).values_list("path", flat=True):
        path = path.split("?")[0]
        if path.endswith("/status"):
            kinds["sync status"] += 1
        elif path.endswith("/transactions"):
            kinds["transactions"] += 1
        elif path.endswith("/push"):
            kinds["push operations"] += 1
        else:
            kinds[path.rsplit("/", 1)[-1]] += 1
    return kinds


def _mark() -> int:
    return sb.RequestLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _assert_data_types_mirrored(sync_ids) -> None:
    """Each pushed or refused item carries the data type the sandbox pushed it as."""
    for item in sb.Item.objects.filter(sync__sync_id__in=list(sync_ids)).select_related("sync"):
        row = mirror.PushItem.objects.get(
            sync__sync_id=item.sync.sync_id, transaction_id=item.transaction_id
        )
        if item.status in (sb.ItemStatus.PENDING, sb.ItemStatus.UNKNOWN):
            continue
        assert row.data_type == sb.DataType(item.data_type).label, (item, row.data_type)


@pytest.fixture
def mirrored(upstream, small_estate, upstream_is_sandbox, live_server, secret):  # noqa: F811
    """The mirror equal to the sandbox's estate (its syncs all ended), and a consumer of
    current-format webhooks."""
    finalize_everything_due()
    _mirror_everything(upstream)
    consumer(live_server, secret, "current")
    return upstream


def _retry(api: httpx.Client, sync: sb.Sync) -> None:
    with mock.patch("sandbox.services._enqueue_finalize"):
        response = api.post(
            f"/companies/{sync.company.company_id}/sync/expenses/syncs",
            json={"syncIds": [str(sync.sync_id)]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert response.status_code in (200, 202), response.text


def test_a_new_sync_costs_its_status_and_one_read_of_what_the_webhook_lacks(api, mirrored):
    """A new sync's transactions are new to the mirror: their integration and data types are
    read once (push operations; the transactions list when none was attempted), never both
    and never the sync's transactions when the push operations name them all."""
    companies = list(sb.Company.objects.order_by("pk")[:4])
    sb.Company.objects.filter(pk=companies[3].pk).update(failure_mode=4220)  # never attempted
    syncs = [start_expense_sync(api, company, count=12) for company in companies]
    mark = _mark()

    finalize_everything_due()

    deliveries = list(sb.WebhookDelivery.objects.select_related("sync"))
    assert len(deliveries) == len(syncs)
    assert all(d.delivered_at is not None for d in deliveries)
    requests = _requests_since(mark)
    assert requests["sync status"] == len(syncs)
    # One read of what the webhook lacks per sync: push operations for a sync that
    # pushed (their data types name the integration too), the list for one that did not.
    assert requests["push operations"] + requests["transactions"] == len(syncs), requests
    pushed = [s for s in syncs if s.items.exclude(status=sb.ItemStatus.PENDING).exists()]
    assert requests["transactions"] == len(syncs) - len(pushed), requests
    assert sum(requests.values()) == 2 * len(syncs), requests
    assert_syncs_mirrored(s.sync_id for s in syncs)
    _assert_data_types_mirrored(s.sync_id for s in syncs)
    assert WebhookEvent.objects.filter(processed_at__isnull=False, error="").count() == len(syncs)


def test_a_webhook_whose_transactions_the_mirror_knows_costs_one_request(api, mirrored):
    """A retry re-pushes transactions the mirror read with their types: only the sync's
    status is read, once per webhook, duplicates and all."""
    failed = [
        sync
        for sync in sb.Sync.objects.filter(finalized=True, status_code__in=(5120, 5130))
        .select_related("company")
        .order_by("pk")
        if sync.items.filter(
            status__in=(sb.ItemStatus.VALIDATION_ERROR, sb.ItemStatus.PUSH_ERROR)
        ).exists()
    ]
    sources = list({s.company_id: s for s in failed}.values())[:3]
    assert sources, "the estate has failed syncs with failed items"
    for sync in sources:
        _retry(api, sync)
    retries = list(sb.Sync.objects.filter(kind=sb.SyncKind.RETRY))
    assert len(retries) == len(sources)
    mark = _mark()

    finalize_everything_due()

    requests = _requests_since(mark)
    assert requests == Counter({"sync status": len(retries)}), requests
    assert_syncs_mirrored(s.sync_id for s in retries)
    _assert_data_types_mirrored(s.sync_id for s in retries)

    # The same deliveries again (Svix's retries): stored once, no request.
    mark = _mark()
    for delivery in sb.WebhookDelivery.objects.all():
        sb.WebhookDelivery.objects.filter(pk=delivery.pk).update(delivered_at=None)
        deliver_webhook_task.delay(delivery.pk)
    assert _requests_since(mark) == Counter()
    assert WebhookEvent.objects.count() == len(retries)


def test_the_webhook_costs_what_it_did_before_when_it_carries_no_transactions(api, mirrored):
    """The legacy format names the sync only: its status and items are read as before."""
    sb.WebhookConsumer.objects.update(event_format="legacy")
    company = sb.Company.objects.filter(failure_mode=0).order_by("pk")[0]
    sync = start_expense_sync(api, company, count=6)
    mark = _mark()

    finalize_everything_due()

    requests = _requests_since(mark)
    assert requests["sync status"] == 1
    assert requests["transactions"] == 1, requests
    assert_syncs_mirrored([sync.sync_id])
    _assert_data_types_mirrored([sync.sync_id])
