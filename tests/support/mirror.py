"""Ground truth for mirror tests: what the sandbox says against what the mirror holds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.utils import timezone

from dashboard import models as mirror
from dashboard import vocabulary
from sandbox import api as sandbox_api
from sandbox import models as sb


def sandbox_truth() -> dict[str, set]:
    """What the sandbox's API says, computed from its tables."""
    now = timezone.now()
    companies = {
        (str(c.company_id), c.name, sb.Platform(c.platform).label) for c in sb.Company.objects.all()
    }
    syncs = set()
    for sync in sb.Sync.objects.select_related("company"):
        body = sandbox_api.sync_body(sync, sync.company, now)
        syncs.add(
            (
                body["syncId"],
                body["companyId"],
                body["syncStatusCode"],
                body["errorMessage"] or "",
                body["dataPushed"],
            )
        )
    items = set()
    for item in sb.Item.objects.select_related("sync"):
        body = sandbox_api.transaction_body(item)
        items.add(
            (
                str(item.sync.sync_id),
                body["transactionId"],
                body["integrationType"],
                body["status"],
                body.get("message"),
            )
        )
    return {"companies": companies, "syncs": syncs, "items": items}


def mirror_state() -> dict[str, set]:
    companies = {(str(c.company_id), c.name, c.platform_name) for c in mirror.Company.objects.all()}
    syncs = {
        (str(s.sync_id), str(s.company.company_id), s.status_code, s.error_message, s.data_pushed)
        for s in mirror.Sync.objects.select_related("company")
    }
    items = {
        (
            str(i.sync.sync_id),
            str(i.transaction_id),
            i.integration_type,
            vocabulary.ItemStatus(i.status).label,
            i.message,
        )
        for i in mirror.PushItem.objects.select_related("sync")
    }
    return {"companies": companies, "syncs": syncs, "items": items}


def assert_mirror_exact() -> None:
    truth, seen = sandbox_truth(), mirror_state()
    for part in ("companies", "syncs", "items"):
        missing, extra = truth[part] - seen[part], seen[part] - truth[part]
        assert not missing and not extra, (
            f"{part}: {len(missing)} missing, {len(extra)} extra; "
            f"e.g. missing {sorted(missing)[:2]} extra {sorted(extra)[:2]}"
        )
    assert mirror.PushItem.objects.count() == sb.Item.objects.count()
    assert mirror.Sync.objects.count() == sb.Sync.objects.count()


def assert_syncs_mirrored(sync_ids: Iterable[str | uuid.UUID]) -> None:
    """`assert_mirror_exact` restricted to some syncs: their companies, statuses and items.

    For targeted refreshes (webhooks), which bring only the syncs they name up to date.
    """
    wanted = {str(s) for s in sync_ids}
    truth, seen = sandbox_truth(), mirror_state()
    upstream_syncs = {row[0] for row in truth["syncs"]}
    assert wanted <= upstream_syncs, f"not in the sandbox: {sorted(wanted - upstream_syncs)[:2]}"
    companies = {row[1] for row in truth["syncs"] if row[0] in wanted}
    keep = {
        "companies": lambda row: row[0] in companies,
        "syncs": lambda row: row[0] in wanted,
        "items": lambda row: row[0] in wanted,
    }
    for part, selected in keep.items():
        expected = {row for row in truth[part] if selected(row)}
        actual = {row for row in seen[part] if selected(row)}
        missing, extra = expected - actual, actual - expected
        assert not missing and not extra, (
            f"{part}: {len(missing)} missing, {len(extra)} extra; "
            f"e.g. missing {sorted(missing)[:2]} extra {sorted(extra)[:2]}"
        )
