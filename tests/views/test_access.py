"""Who may see what: anonymous visitors, viewers, runners."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse


def _pages(estate) -> list[str]:
    sync = estate["push_error"]
    snapshot = estate["xero"].configs.first()
    return [
        reverse("summary"),
        reverse("sync-history"),
        reverse("sync-history-csv"),
        reverse("sync-detail", args=[sync.sync_id]),
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=items",
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=config",
        reverse("company-detail", args=[estate["xero"].company_id]),
        reverse("transaction-detail", args=[sync.items.first().transaction_id]),
        reverse("sync-history") + f"?q={str(sync.sync_id)[:8]}",
        reverse("config-download", args=[estate["xero"].company_id, snapshot.pk]),
        reverse("preferences"),
        reverse("retry-audit"),
        reverse("sync-retry", args=[sync.sync_id]),
    ]


def test_an_anonymous_visitor_is_sent_to_login_from_every_page(client, estate):
    for url in _pages(estate):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def test_a_viewer_reads_every_page_but_may_not_retry(viewer_client, estate):
    for url in _pages(estate)[:-1]:
        assert viewer_client.get(url).status_code == 200, url
    retry_page = reverse("sync-retry", args=[estate["push_error"].sync_id])
    assert viewer_client.get(retry_page).status_code == 403
    detail = viewer_client.get(reverse("sync-detail", args=[estate["push_error"].sync_id]))
    assert 'data-testid="retry-button"' not in detail.content.decode()


def test_a_runner_sees_the_retry_button_only_where_items_failed(runner_client, estate):
    failed = runner_client.get(reverse("sync-detail", args=[estate["push_error"].sync_id]))
    assert 'data-testid="retry-button"' in failed.content.decode()
    clean = runner_client.get(reverse("sync-detail", args=[estate["ok"].sync_id]))
    assert 'data-testid="retry-button"' not in clean.content.decode()
    assert "There is nothing to retry here" in clean.content.decode()


@pytest.mark.parametrize("name", ["sync-detail", "company-detail"])
def test_an_unknown_id_is_a_404(viewer_client, estate, name):
    assert viewer_client.get(reverse(name, args=[uuid.uuid4()])).status_code == 404


def test_a_bulk_retry_link_needs_the_bulk_permission(runner_client, estate):
    page = runner_client.get(reverse("sync-history") + "?range=all").content.decode()
    assert 'data-testid="bulk-retry-link"' not in page
    assert runner_client.get(reverse("bulk-retry") + "?range=all").status_code == 403
