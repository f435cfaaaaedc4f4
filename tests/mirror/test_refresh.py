"""A full refresh against the sandbox over real HTTP leaves an exact mirror."""

from __future__ import annotations

from django.core.management import call_command

from dashboard import ingest
from dashboard import models as mirror
from sandbox import models as sb

from .conftest import assert_mirror_exact


def _refresh_all(upstream) -> ingest.Stats:
    total = ingest.Stats()
    for company in ingest.refresh_companies(upstream):
        total.add(ingest.refresh_company(upstream, company))
    return total


def test_a_full_refresh_mirrors_every_company_sync_and_item(upstream, small_estate):
    stats = _refresh_all(upstream)

    assert_mirror_exact()
    assert stats.items_seen == sb.Item.objects.count()
    # Every item that was pushed or failed carries the data type it was pushed as.
    by_id = {
        (str(i.sync.sync_id), str(i.transaction_id)): sb.DataType(i.data_type).label
        for i in sb.Item.objects.select_related("sync").exclude(
            status__in=[sb.ItemStatus.PENDING, sb.ItemStatus.UNKNOWN]
        )
    }
    typed = {
        (str(i.sync.sync_id), str(i.transaction_id)): i.data_type
        for i in mirror.PushItem.objects.select_related("sync").exclude(
            status__in=mirror.OPEN_ITEM_STATUSES
        )
    }
    assert typed == by_id
    assert mirror.ConfigSnapshot.objects.count() == sb.Company.objects.count()


def test_a_second_refresh_changes_nothing(upstream, small_estate):
    _refresh_all(upstream)
    before = set(mirror.Sync.objects.values_list("pk", "last_refreshed", "category"))
    stats = _refresh_all(upstream)
    assert stats.syncs_written == 0
    assert stats.items_written == 0
    assert set(mirror.Sync.objects.values_list("pk", "last_refreshed", "category")) == before
    assert_mirror_exact()


def test_the_refresh_command_prints_a_summary(
    upstream, small_estate, settings, sandbox_url, api_key, capsys
):
    settings.CODAT_BASE_URL = sandbox_url
    settings.CODAT_API_KEY = api_key
    call_command("refresh", "--all", "--workers", "2")
    out = capsys.readouterr()
    assert "companies 6," in out.out
    assert f"items {sb.Item.objects.count()} " in out.out
    assert "requests " in out.out
    assert "6/6 companies" in out.err
    assert_mirror_exact()
