"""The permission cast and mirror data built directly (no upstream needed)."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from dashboard.fingerprint import fingerprint
from dashboard.ingest import sync_category
from dashboard.models import Company, ConfigSnapshot, ItemStatus, PushItem, Sync

_n = itertools.count(1)


def make_company(**fields) -> Company:
    n = next(_n)
    values = {
        "company_id": uuid.uuid4(),
        "name": f"Company {n}",
        "platform_name": "Xero",
        "platform_key": "gbol",
    }
    values.update(fields)
    return Company.objects.create(**values)


def make_sync(
    company: Company, *, code: int = 2000, ago: timedelta = timedelta(hours=1), items=(), **fields
) -> Sync:
    started = timezone.now() - ago
    failed = sum(1 for status, _ in items if status in (2, 4, 5))
    values = {
        "sync_id": uuid.uuid4(),
        "company": company,
        "status_code": code,
        "sync_utc": started,
        "category": sync_category(code, failed),
        "items_total": len(items),
        "items_failed": failed,
        "items_completed": sum(1 for status, _ in items if status == ItemStatus.COMPLETED),
        "items_pending": sum(1 for status, _ in items if status in (0, 1)),
        "items_status_code": code,
        "data_pushed": code == 2000,
        "platform_name": company.platform_name,
    }
    if code not in (1000, 1010):
        values["completed_at"] = started + timedelta(seconds=90)
        values["duration_s"] = 90
    values.update(fields)
    if values.get("error_message"):
        values["error_fingerprint"] = fingerprint(values["error_message"])
    sync = Sync.objects.create(**values)
    PushItem.objects.bulk_create(
        [
            PushItem(
                sync=sync,
                transaction_id=uuid.uuid4(),
                status=status,
                message=message,
                data_type="directCosts" if status != ItemStatus.PENDING else "",
                fingerprint=fingerprint(message),
            )
            for status, message in items
        ]
    )
    return sync


def make_config(
    company: Company, config: dict, *, ago: timedelta = timedelta(days=1)
) -> ConfigSnapshot:
    from dashboard.ingest import config_digest

    return ConfigSnapshot.objects.create(
        company=company,
        config=config,
        digest=config_digest(config),
        fetched_at=timezone.now() - ago,
    )


def _user(name: str, group: str | None = None, **flags) -> User:
    from dashboard.roles import ensure_groups

    groups = ensure_groups()
    user = User.objects.create_user(name, password="pw-" + name, **flags)
    if group:
        user.groups.add(groups[group])
    return user


@pytest.fixture
def viewer(db) -> User:
    return _user("viewer", "Support viewer")


@pytest.fixture
def runner(db) -> User:
    return _user("runner", "Support runner")


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


@pytest.fixture
def runner_client(client, runner):
    client.force_login(runner)
    return client


@pytest.fixture
def estate(db):
    """Two companies with a mix of outcomes in the last week."""
    xero = make_company(name="Acme Ltd", platform_name="Xero")
    qbo = make_company(name="Globex Inc", platform_name="QuickBooks Online")
    syncs = {
        "ok": make_sync(xero, code=2000, ago=timedelta(hours=2), items=[(3, None), (3, None)]),
        "push_error": make_sync(
            xero,
            code=5130,
            ago=timedelta(hours=5),
            items=[
                (3, None),
                (
                    4,
                    "Correlation ID: 1f6ab1bc-58c8-4c1a-a654-86464b065f69. "
                    "Period closed 2026-03-31",
                ),
            ],
            error_message=(
                "An error occurred in a downstream service. Correlation ID: "
                "1f6ab1bc-58c8-4c1a-a654-86464b065f69. Message: The account period has closed."
            ),
        ),
        "running": make_sync(qbo, code=1000, ago=timedelta(minutes=3), items=[(1, None)]),
        "long": make_sync(qbo, code=1010, ago=timedelta(minutes=40), items=[(1, None)]),
        "old": make_sync(
            qbo, code=4220, ago=timedelta(days=20), error_message="Company de-authorized"
        ),
        "empty": make_sync(qbo, code=2040, ago=timedelta(days=1)),
    }
    make_config(
        xero,
        {"bankAccount": {"id": "1"}, "customer": {"defaultCustomerId": "c1"}},
        ago=timedelta(days=3),
    )
    make_config(
        xero,
        {"bankAccount": {"id": "2"}, "customer": {"defaultCustomerId": "c1"}},
        ago=timedelta(days=1),
    )
    return {"xero": xero, "qbo": qbo, **syncs}
