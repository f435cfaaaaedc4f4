"""Logged-in clients for the permission cast, and a small mirror built directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.factories import make_company, make_config, make_sync


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
