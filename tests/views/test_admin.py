"""Django admin: the mirror is read-only (rows included), internal and sandbox tables stay
out of the way, and syncs and companies link to their pages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from dashboard.models import (
    AccessEvent,
    Company,
    ConfigSnapshot,
    PushItem,
    RefreshState,
    Sync,
    TransactionState,
    WebhookEvent,
)
from dashboard.vocabulary import AccessAction, ItemStatus

MIRRORED = [Company, Sync, PushItem, ConfigSnapshot, WebhookEvent, TransactionState, RefreshState]
INTERNAL = ["syncrollup", "rankingsnapshot", "rollupdirty"]


@pytest.fixture
def mirror(estate) -> dict[type[Model], Model]:
    """One row of every mirrored table."""
    sync = estate["push_error"]
    item = sync.items.order_by("pk").first()
    rows: dict[type[Model], Any] = {
        Company: estate["xero"],
        Sync: sync,
        PushItem: item,
        ConfigSnapshot: estate["xero"].configs.first(),
        WebhookEvent: WebhookEvent.objects.create(
            delivery_id="msg_1", event_type="expenses.sync.unsuccessful", body="{}"
        ),
        TransactionState: TransactionState.objects.create(
            company=sync.company,
            transaction_id=item.transaction_id,
            last_sync=sync,
            last_sync_utc=sync.sync_utc,
            status=ItemStatus.PUSH_ERROR,
            outstanding=True,
        ),
        RefreshState: RefreshState.objects.create(company=estate["xero"]),
    }
    return rows


def admin_url(model: type[Model], view: str, *args: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.mark.parametrize("model", MIRRORED, ids=lambda m: m.__name__)
def test_a_mirrored_row_cannot_be_deleted_even_by_a_superuser(admin_client, mirror, model):
    row = mirror[model]
    delete = admin_url(model, "delete", row.pk)

    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", MIRRORED, ids=lambda m: m.__name__)
def test_a_mirrored_table_offers_no_bulk_delete(admin_client, mirror, model):
    row = mirror[model]
    changelist = admin_url(model, "changelist")

    page = admin_client.get(changelist)
    asked = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )

    assert page.status_code == 200
    assert "delete_selected" not in page.content.decode()
    assert asked.status_code in (200, 302)
    assert model.objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("model", MIRRORED, ids=lambda m: m.__name__)
def test_nothing_is_added_to_the_mirror_by_hand(admin_client, db, model):
    assert admin_client.get(admin_url(model, "add")).status_code == 403


@pytest.mark.parametrize("model", [m for m in MIRRORED if m is not RefreshState])
def test_a_mirrored_row_shows_without_a_form_to_save(admin_client, mirror, model):
    page = admin_client.get(admin_url(model, "change", mirror[model].pk)).content.decode()

    assert 'name="_save"' not in page


def test_an_admin_may_lift_a_companys_pause_and_nothing_else(admin_client, mirror):
    state = mirror[RefreshState]
    state.paused_until = timezone.now()
    state.last_error = "429 Too Many Requests"
    state.save()
    change = admin_url(RefreshState, "change", state.pk)

    saved = admin_client.post(
        change, {"paused_until_0": "", "paused_until_1": "", "last_error": "edited"}
    )

    assert saved.status_code == 302
    state.refresh_from_db()
    assert (state.paused_until, state.last_error) == (None, "429 Too Many Requests")


def test_companies_and_syncs_link_to_their_pages(admin_client, mirror):
    for model, page in (
        (Company, reverse("company-detail", args=[mirror[Company].company_id])),
        (Sync, reverse("sync-detail", args=[mirror[Sync].sync_id])),
    ):
        change = admin_client.get(admin_url(model, "change", mirror[model].pk)).content.decode()
        link = reverse("admin:view_on_site", args=[_content_type(model), mirror[model].pk])
        assert f'href="{link}"' in change and "View on site" in change, model

        followed = admin_client.get(link)
        assert followed.status_code == 302 and followed["Location"].endswith(page), model
        assert admin_client.get(page).status_code == 200


def _content_type(model: type[Model]) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model).pk


def test_internal_tables_are_off_the_index_but_readable_by_address(admin_client, db):
    index = admin_client.get(reverse("admin:index")).content.decode()

    for name in INTERNAL:
        changelist = reverse(f"admin:dashboard_{name}_changelist")
        assert changelist not in index, name
        assert admin_client.get(changelist).status_code == 200, name
    assert reverse("admin:dashboard_sync_changelist") in index


SANDBOX_TABLES = "/admin/sandbox/"


def test_the_sandbox_tables_are_absent_while_the_sandbox_is_off(admin_client, settings, db):
    settings.SANDBOX_ENABLED = False

    index = admin_client.get(reverse("admin:index")).content.decode()

    assert SANDBOX_TABLES not in index
    assert admin_client.get(reverse("admin:sandbox_company_changelist")).status_code == 403
    assert admin_client.get(reverse("admin:app_list", args=["sandbox"])).status_code == 404


def test_the_sandbox_tables_are_under_their_own_heading_when_it_is_on(
    admin_client, sandbox_enabled, db
):
    index = admin_client.get(reverse("admin:index")).content.decode()

    assert "Sandbox upstream (Codat-compatible)" in index
    assert reverse("admin:sandbox_sandboxsettings_changelist") in index
    assert admin_client.get(reverse("admin:sandbox_company_changelist")).status_code == 200


def test_the_access_audit_is_readable_never_editable(admin_client, db):
    event = AccessEvent.objects.create(
        action=AccessAction.CSV_EXPORT, username="viewer", company_id=uuid.uuid4()
    )

    listing = admin_client.get(admin_url(AccessEvent, "changelist"))
    assert listing.status_code == 200 and "CSV export" in listing.content.decode()
    assert admin_client.get(admin_url(AccessEvent, "add")).status_code == 403
    assert admin_client.post(admin_url(AccessEvent, "delete", event.pk)).status_code == 403
    assert AccessEvent.objects.filter(pk=event.pk).exists()
