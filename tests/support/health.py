"""The mirror's own health in tests: a company polled through the real refresh against
answers a test writes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from dashboard import ingest
from dashboard.models import Company, RefreshState
from tests.support.upstream import mock_client


def sync_record(
    company: Company, *, started: datetime, code: int = 2000, sync_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        "companyId": str(company.company_id),
        "syncId": str(sync_id or uuid.uuid4()),
        "syncStatusCode": code,
        "syncStatus": "Success" if code == 2000 else "In progress",
        "syncUtc": started.isoformat().replace("+00:00", "Z"),
        "dataPushed": code == 2000,
    }


def poll(company: Company, records: list[dict[str, Any]]) -> None:
    """One company refresh (a poll) whose upstream lists `records` and nothing else."""

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/list/status"):
            return httpx.Response(200, json=records)
        if path.endswith("/config"):
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"results": [], "_links": {}})

    with mock_client(answer) as client:
        ingest.refresh_company(client, company)


def refreshed_before(company: Company, at: datetime) -> None:
    """The company's import is behind it: it was refreshed successfully at `at`."""
    RefreshState.objects.update_or_create(company=company, defaults={"last_success": at})
