"""Who may see what: anonymous visitors, users without a role, viewers, runners.

Every pattern against every role is in `test_permission_walk.py`; this module
holds what the walk does not: what a refusal says, and when access ends.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.support.users import make_user


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


@pytest.fixture
def nobody_client(client, db):
    """Logged in, in no support group."""
    client.force_login(make_user("nobody"))
    return client


def test_a_user_without_a_role_reads_nothing(nobody_client, estate):
    for url in _pages(estate):
        response = nobody_client.get(url)
        assert response.status_code == 403, url
        page = response.content.decode()
        assert "You need the Support viewer role to see sync data." in page, url
        assert "no-store" in response["Cache-Control"], url


def test_the_refusal_says_whom_to_ask_and_shows_nothing_of_what_was_asked(
    nobody_client, estate, settings
):
    settings.SUPPORT_ACCESS_CONTACT = "the service desk (x4321)"
    sync = estate["push_error"]
    response = nobody_client.get(reverse("sync-detail", args=[sync.sync_id]) + "?tab=items")
    page = response.content.decode()
    assert 'data-testid="access-denied"' in page
    assert "Ask the service desk (x4321) to add you to the <strong>Support viewer</strong>" in page
    assert 'href="/static/css/app.css"' in page  # the site's layout, not a bare page
    for secret in (str(sync.sync_id), str(sync.company.company_id), sync.company.name, "Period"):
        assert secret not in page


def test_the_refusal_offers_only_links_that_work_without_a_role(nobody_client, estate):
    page = nobody_client.get(reverse("summary")).content.decode()
    for role_page in ("sync-history", "retry-audit", "preferences"):
        assert f'href="{reverse(role_page)}' not in page, role_page
    assert f'href="{reverse("summary")}"' not in page
    assert f'action="{reverse("logout")}"' in page
    assert nobody_client.get(reverse("password_change")).status_code == 200


def test_the_contact_defaults_to_the_administrator(nobody_client, estate):
    page = nobody_client.get(reverse("summary")).content.decode()
    assert "Ask your Sync Health administrator to add you" in page


def test_a_user_without_a_role_can_log_out(nobody_client, estate):
    response = nobody_client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert nobody_client.get(reverse("summary"))["Location"].startswith(reverse("login"))


def test_leaving_the_support_group_ends_access_on_the_next_request(client, estate):
    user = make_user("leaver", "Support runner")
    client.force_login(user)
    detail = reverse("sync-detail", args=[estate["push_error"].sync_id])
    assert client.get(detail).status_code == 200
    user.groups.remove(Group.objects.get(name="Support runner"))
    response = client.get(detail)
    assert response.status_code == 403
    assert "You need the Support viewer role" in response.content.decode()


def test_a_staff_admin_without_a_role_has_the_admin_but_not_the_data(client, estate):
    staff = make_user("staff-only")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("summary")).status_code == 403
    # The admin's own refusal (no model permission) is not ours to explain.
    refused = client.get(reverse("admin:dashboard_sync_changelist"))
    assert refused.status_code == 403
    page = refused.content.decode()
    assert "Your account is not allowed to see this page." in page
    assert f'href="{reverse("admin:index")}"' in page


def test_a_viewer_reads_every_page_but_may_not_retry(viewer_client, estate):
    for url in _pages(estate)[:-1]:
        assert viewer_client.get(url).status_code == 200, url
    retry_page = reverse("sync-retry", args=[estate["push_error"].sync_id])
    refused = viewer_client.get(retry_page)
    assert refused.status_code == 403
    assert "You need the Support runner role to retry a sync." in refused.content.decode()
    assert "Back to the dashboard" in refused.content.decode()
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
    refused = runner_client.get(reverse("bulk-retry") + "?range=all")
    assert refused.status_code == 403
    assert "You need the Support lead role to retry in bulk." in refused.content.decode()


def test_a_form_refused_by_the_csrf_check_says_nothing_changed(runner, estate):
    """A retry posted without its token (an old tab, another site): a page of ours, no retry."""
    from django.test import Client

    from dashboard.models import RetryRequest

    client = Client(enforce_csrf_checks=True)
    client.force_login(runner)
    sync = estate["push_error"]
    response = client.post(reverse("sync-retry", args=[sync.sync_id]), {"key": str(uuid.uuid4())})

    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-testid="csrf-refused"' in page and "Nothing was changed" in page
    assert "CSRF token" not in page  # the reason is for the log, not the person
    assert "no-store" in response["Cache-Control"]
    assert not RetryRequest.objects.filter(sync=sync).exists()
