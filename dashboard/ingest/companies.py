"""Companies: upserted from the upstream's records, with their accounting platform."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models import Company, PurgeRecord, Sync
from ..platforms import forget_platform_names
from ..upstream import CompanyRecord, Upstream
from .records import BATCH, chunked, parse_time, parse_uuid


class CompanyPurged(Exception):
    """The company's mirrored data was erased (`manage.py purge_company`): it is not
    mirrored again, or the next poll would undo the erasure."""

    def __init__(self, company_id: uuid.UUID | str) -> None:
        super().__init__(f"Company {company_id} was purged: it is not mirrored.")


def purged_companies(company_ids: Iterable[uuid.UUID | str]) -> set[uuid.UUID]:
    """Those of these companies whose mirrored data was erased."""
    return set(
        PurgeRecord.objects.filter(company_id__in=list(company_ids)).values_list(
            "company_id", flat=True
        )
    )


def refuse_purged(company_id: uuid.UUID | str) -> None:
    if purged_companies([company_id]):
        raise CompanyPurged(company_id)


def _platform(record: CompanyRecord) -> tuple[str, str, str]:
    for link in record.get("dataConnections") or []:
        if link.get("sourceType") == "Accounting":
            return (
                str(link.get("integrationKey") or ""),
                str(link.get("platformName") or ""),
                str(link.get("status") or ""),
            )
    return "", "", ""


_COMPANY_FIELDS = (
    "name",
    "description",
    "platform_key",
    "platform_name",
    "connection_status",
    "created",
    "redirect_url",
)


def _redirect(value: object) -> str:
    """The company's connect link, if it is one: an https URL (never `javascript:`)."""
    text = str(value or "").strip()
    if len(text) > 500 or not text.lower().startswith("https://") or any(c.isspace() for c in text):
        return ""
    return text


def upsert_companies(records: Iterable[CompanyRecord]) -> list[Company]:
    """Insert or update companies; returns the rows for the given records."""
    by_id: dict[uuid.UUID, Company] = {}
    for record in records:
        company_id = parse_uuid(record.get("id"))
        if company_id is None:
            continue
        key, platform, status = _platform(record)
        by_id[company_id] = Company(
            company_id=company_id,
            name=str(record.get("name") or "")[:500],
            description=str(record.get("description") or ""),
            platform_key=key[:50],
            platform_name=platform[:100],
            connection_status=status[:50],
            created=parse_time(record.get("created")),
            redirect_url=_redirect(record.get("redirect")),
        )
    for company_id in purged_companies(by_id):
        del by_id[company_id]
    if not by_id:
        return []
    existing = {c.company_id: c for c in Company.objects.filter(company_id__in=list(by_id))}
    now = timezone.now()
    changed = []
    for company_id, row in by_id.items():
        old = existing.get(company_id)
        if old is None or any(getattr(old, f) != getattr(row, f) for f in _COMPANY_FIELDS):
            row.updated = now
            if old is not None:
                row.first_seen = old.first_seen
            else:
                # Ingest keeps a new company's current state from its first sync.
                row.state_built_at = now
            changed.append(row)
    moved: dict[str, list[uuid.UUID]] = {}
    for row in changed:
        old = existing.get(row.company_id)
        if old is not None and old.platform_name != row.platform_name:
            moved.setdefault(row.platform_name, []).append(row.company_id)
    # A company and its syncs' copy of its platform change together, or not at all.
    with transaction.atomic():
        for batch in chunked(changed, BATCH):
            Company.objects.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["company_id"],
                update_fields=[*_COMPANY_FIELDS, "updated"],
            )
        for platform, company_ids in moved.items():
            Sync.objects.filter(company__company_id__in=company_ids).update(platform_name=platform)
    if changed:
        forget_platform_names()
        existing = {c.company_id: c for c in Company.objects.filter(company_id__in=list(by_id))}
    return [existing[cid] for cid in by_id if cid in existing]


def refresh_companies(client: Upstream) -> list[Company]:
    """Read every company from the upstream (paged) and upsert them."""
    companies: list[Company] = []
    for page in client.list_companies():
        companies.extend(upsert_companies(page))
    return companies


def ensure_company(client: Upstream, company_id: str) -> Company:
    """The company's row, read from the upstream if it is new; CompanyPurged if it was erased."""
    refuse_purged(company_id)
    company = Company.objects.filter(company_id=company_id).first()
    if company is None:
        upsert_companies([client.get_company(company_id)])
        company = Company.objects.get(company_id=company_id)
    return company
