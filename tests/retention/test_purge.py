"""Erasing a company: no row of it is left, the rest is untouched, and a record stays."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import models
from django.urls import reverse
from django.utils import timezone

from dashboard import ingest, rankings, retention
from dashboard.ingest import state
from dashboard.models import (
    BulkMember,
    BulkRetry,
    Company,
    ConfigSnapshot,
    PurgeRecord,
    PushItem,
    RankingSnapshot,
    RefreshState,
    RetryRequest,
    Sync,
    TransactionState,
    WebhookEvent,
)
from dashboard.vocabulary import BulkState, PurgeReason, RetryState
from tests.support.factories import make_company, make_config, make_sync
from tests.support.retention import DONE, FAILED, current_state, days, request
from tests.support.users import make_user

pytestmark = pytest.mark.django_db


def webhook_event(*, company_id=None, sync_id=None) -> WebhookEvent:
    return WebhookEvent.objects.create(
        delivery_id=f"msg_{uuid.uuid4().hex}",
        event_type="expenses.sync.unsuccessful",
        body=json.dumps({"payload": {"referenceCompany": {"name": "Dough Ltd"}}}),
        company_id=company_id,
        sync_id=sync_id,
    )


@pytest.fixture
def estate(db):
    """Two companies with everything a company can have; the first is erased."""
    user = make_user("lead-for-purge")
    built = {}
    for name in ("Dough Ltd", "Other Co"):
        company = make_company(name=name, description=f"{name}'s books")
        original = make_sync(company, code=5130, ago=days(3), items=[FAILED, FAILED, DONE])
        tids = list(PushItem.objects.filter(sync=original).values_list("transaction_id", flat=True))
        retry = make_sync(
            company, ago=days(2), items=[DONE], transaction_ids=tids[:1], retry_of=original
        )
        make_sync(company, ago=days(1), items=[DONE] * 4)
        make_config(company, {"bank": name})
        RefreshState.objects.create(company=company, last_success=timezone.now())
        bulk = BulkRetry.objects.create(
            key=uuid.uuid4(), user=user, scope=f"company={company.company_id}",
            description=f"Last 7 days; company {name}", state=BulkState.FANNED_OUT,
        )  # fmt: skip
        asked = request(
            user, original, ago=days(2), state=RetryState.COMPLETED, bulk=bulk,
            new_sync_id=retry.sync_id, sync_ids=[str(original.sync_id)],
        )  # fmt: skip
        BulkMember.objects.create(
            bulk=bulk, sync=original, company=company, status_code=5130, items=2, request=asked
        )
        webhook_event(company_id=company.company_id, sync_id=original.sync_id)
        webhook_event(sync_id=retry.sync_id)  # a legacy event may name only the sync
        built[name] = company
    # A bulk retry over both companies keeps the other's member.
    shared = BulkRetry.objects.create(
        key=uuid.uuid4(), user=user, scope="code=5130", state=BulkState.FANNED_OUT
    )
    for company in built.values():
        sync = Sync.objects.filter(company=company, retry_of=None, status_code=5130).get()
        BulkMember.objects.create(
            bulk=shared, sync=sync, company=company, status_code=5130, items=1, included=False
        )
    rankings.refresh()
    return built["Dough Ltd"], built["Other Co"], user


def rows_of(company: Company, sync_pks: set[int], sync_ids: set[uuid.UUID]) -> dict[str, int]:
    """Rows of every table that point at the company or its syncs, by key or by ID."""
    found = {}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            target = getattr(field, "related_model", None)
            if isinstance(field, models.ForeignKey) and target is Company:
                n = model.objects.filter(**{field.name: company.pk}).count()
            elif isinstance(field, models.ForeignKey) and target is Sync:
                n = model.objects.filter(**{f"{field.name}__in": sync_pks}).count()
            elif isinstance(field, models.UUIDField) and field.name == "company_id":
                n = model.objects.filter(company_id=company.company_id).count()
            elif isinstance(field, models.UUIDField) and field.name in ("sync_id", "new_sync_id"):
                n = model.objects.filter(**{f"{field.name}__in": sync_ids}).count()
            else:
                continue
            # The sandbox is the upstream, not the mirror; the record is what stays.
            if n and model._meta.app_label == "dashboard" and model is not PurgeRecord:
                found[f"{model._meta.label}.{field.name}"] = n
    return found


def everything_of(company: Company) -> dict:
    syncs = Sync.objects.filter(company=company)
    return {
        "company": Company.objects.filter(pk=company.pk).values().get(),
        "syncs": sorted(syncs.values_list("pk", "items_outstanding", "resolved_by_id")),
        "items": sorted(PushItem.objects.filter(sync__company=company).values_list("pk", "status")),
        "states": sorted(
            TransactionState.objects.filter(company=company).values_list("pk", "outstanding")
        ),
        "configs": ConfigSnapshot.objects.filter(company=company).count(),
        "requests": RetryRequest.objects.filter(company=company).count(),
        "members": BulkMember.objects.filter(company=company).count(),
        "events": WebhookEvent.objects.filter(company_id=company.company_id).count(),
    }  # fmt: skip


def purge(company: Company, by: str = "lead-for-purge") -> PurgeRecord:
    record, _ = retention.request_purge(
        company_id=company.company_id, requested_by=by, reason=PurgeReason.ERASURE_REQUEST
    )
    return retention.purge.purge(record.pk)


def test_no_row_of_the_purged_company_is_left_and_the_rest_is_untouched(estate):
    dough, other, _ = estate
    sync_pks = set(Sync.objects.filter(company=dough).values_list("pk", flat=True))
    sync_ids = set(Sync.objects.filter(company=dough).values_list("sync_id", flat=True))
    assert rows_of(dough, sync_pks, sync_ids)  # the check sees them while they exist
    kept = everything_of(other)
    purge(dough)
    assert rows_of(dough, sync_pks, sync_ids) == {}
    assert not Company.objects.filter(pk=dough.pk).exists()
    assert everything_of(other) == kept


def test_the_record_says_who_when_why_and_how_much_and_nothing_personal(estate):
    dough, _, _ = estate
    items = PushItem.objects.filter(sync__company=dough).count()
    record = purge(dough)
    assert record.finished_at is not None and record.lease_until is None
    assert (record.company_id, record.requested_by) == (dough.company_id, "lead-for-purge")
    assert record.reason == PurgeReason.ERASURE_REQUEST
    assert record.removed["syncs"] == 3
    assert record.removed["push items"] == items
    assert record.removed["companies"] == 1
    assert record.removed["webhook events"] == 2
    assert record.removed["bulk retries"] == 1  # its own; the shared one stays
    stored = json.dumps(PurgeRecord.objects.filter(pk=record.pk).values().get(), default=str)
    assert "Dough" not in stored


def test_bulk_retries_that_name_it_go_and_shared_ones_keep_the_others(estate):
    dough, other, _ = estate
    purge(dough)
    assert not BulkRetry.objects.filter(description__contains="Dough").exists()
    shared = BulkRetry.objects.get(scope="code=5130")
    assert list(shared.members.values_list("company_id", flat=True)) == [other.pk]


def test_the_rankings_no_longer_name_it(estate):
    dough, _, _ = estate
    assert any("Dough" in json.dumps(r.failing_companies) for r in RankingSnapshot.objects.all())
    purge(dough)
    assert RankingSnapshot.objects.exists()
    for snapshot in RankingSnapshot.objects.all():
        assert "Dough" not in json.dumps([snapshot.failing_companies, snapshot.streaks])


def test_the_current_state_of_the_others_is_exact(estate):
    dough, other, _ = estate
    purge(dough)
    kept = current_state()
    state.build_company(other.pk)
    assert current_state() == kept


def test_a_stopped_purge_carries_on_and_counts_everything_once(estate):
    dough, _, _ = estate
    items = PushItem.objects.filter(sync__company=dough).count()
    record, _ = retention.request_purge(
        company_id=dough.company_id, requested_by="lead-for-purge", reason=PurgeReason.OFFBOARDING
    )
    first = retention.purge.purge(record.pk, max_seconds=0, max_syncs=1)
    assert first.finished_at is None and first.removed["syncs"] == 1
    assert retention.purge.resume() == [record.pk]
    done = retention.purge.purge(record.pk, max_syncs=1)
    assert done.finished_at is not None
    assert (done.removed["syncs"], done.removed["push items"]) == (3, items)
    # Finished: a second run (a redelivered task) does nothing.
    assert retention.purge.purge(record.pk) is None
    assert retention.purge.resume() == []


def test_a_purge_held_by_a_live_worker_is_not_taken(estate):
    dough, _, _ = estate
    record, _ = retention.request_purge(
        company_id=dough.company_id, requested_by="x", reason=PurgeReason.OFFBOARDING
    )
    held = timezone.now() + timedelta(minutes=5)
    PurgeRecord.objects.filter(pk=record.pk).update(lease_until=held)
    assert retention.purge.purge(record.pk) is None
    assert retention.purge.resume() == []
    assert Company.objects.filter(pk=dough.pk).exists()


def test_a_purged_company_is_never_mirrored_again(estate, settings):
    dough, other, _ = estate
    purge(dough)
    record = {"id": str(dough.company_id), "name": "Dough Ltd", "dataConnections": []}
    mirrored = ingest.upsert_companies([record, {"id": str(other.company_id), "name": "Other Co"}])
    assert [c.company_id for c in mirrored] == [other.company_id]
    assert not Company.objects.filter(company_id=dough.company_id).exists()
    with pytest.raises(ingest.CompanyPurged):
        ingest.ensure_company(client=None, company_id=str(dough.company_id))  # type: ignore[arg-type]


def test_a_refresh_queued_before_the_purge_writes_nothing(estate):
    from dashboard.tasks import refresh_company_task

    dough, _, _ = estate
    retention.request_purge(
        company_id=dough.company_id, requested_by="x", reason=PurgeReason.OFFBOARDING
    )
    with pytest.raises(ingest.CompanyPurged):
        ingest.refresh_company(client=None, company=dough)  # type: ignore[arg-type]
    assert refresh_company_task.apply(args=[str(dough.company_id)]).get()["syncs"] == 0


def test_a_stored_event_of_a_purged_company_is_ignored_when_processed(estate):
    from dashboard import webhooks

    dough, _, _ = estate
    event = webhook_event(company_id=dough.company_id, sync_id=uuid.uuid4())
    retention.request_purge(company_id=dough.company_id, requested_by="x", reason="offboarding")
    assert webhooks.process_event(client=None, event=event) is False  # type: ignore[arg-type]
    event.refresh_from_db()
    assert event.processed_at is not None and "purged" in event.error


def test_the_command_erases_it_and_prints_the_record(estate, capsys):
    dough, other, _ = estate
    call_command(
        "purge_company", str(dough.company_id), "--by", "lead-for-purge",
        "--reason", "erasure_request", "--no-input",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert f"Purged {dough.company_id}" in out and "3 syncs" in out
    assert not Company.objects.filter(pk=dough.pk).exists()
    assert Company.objects.filter(pk=other.pk).exists()
    # Again: the record is there; nothing more to do.
    call_command(
        "purge_company", str(dough.company_id), "--by", "lead-for-purge",
        "--reason", "erasure_request", "--no-input",
    )  # fmt: skip
    assert PurgeRecord.objects.count() == 1


def test_the_command_refuses_a_bad_id_an_unknown_user_and_a_no(estate, monkeypatch):
    dough, _, _ = estate
    with pytest.raises(CommandError, match="not a company ID"):
        call_command("purge_company", "nope", "--by", "lead-for-purge", "--reason", "offboarding")
    with pytest.raises(CommandError, match="No user"):
        call_command(
            "purge_company", str(dough.company_id), "--by", "nobody", "--reason", "offboarding"
        )
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="Nothing erased"):
        call_command(
            "purge_company", str(dough.company_id), "--by", "lead-for-purge",
            "--reason", "offboarding",
        )  # fmt: skip
    assert not PurgeRecord.objects.exists()
    assert Company.objects.filter(pk=dough.pk).exists()


# --- the admin action ---


def changelist() -> str:
    return reverse("admin:dashboard_company_changelist")


def test_superusers_erase_companies_from_the_admin_after_confirming(
    estate, admin_client, celery_eager, django_capture_on_commit_callbacks
):
    dough, other, _ = estate
    chosen = {"action": "purge", "_selected_action": [dough.pk]}
    page = admin_client.post(changelist(), chosen)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Dough Ltd" in body and str(dough.company_id) in body and "Other Co" not in body
    assert Company.objects.filter(pk=dough.pk).exists()  # nothing yet
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            changelist(), {**chosen, "post": "yes", "reason": "offboarding"}, follow=True
        )
    assert done.status_code == 200
    record = PurgeRecord.objects.get(company_id=dough.company_id)
    assert (record.requested_by, record.reason) == ("admin", PurgeReason.OFFBOARDING)
    assert record.finished_at is not None
    assert not Company.objects.filter(pk=dough.pk).exists()
    assert Company.objects.filter(pk=other.pk).exists()


def test_staff_without_the_purge_permission_cannot_erase(estate, client):
    from django.contrib.auth.models import Permission, User

    dough, _, _ = estate
    staff = User.objects.create_user("staff", is_staff=True)
    dashboard = {"content_type__app_label": "dashboard"}
    staff.user_permissions.add(Permission.objects.get(codename="view_company", **dashboard))
    client.force_login(staff)
    page = client.get(changelist())
    assert page.status_code == 200 and b'value="purge"' not in page.content
    client.post(
        changelist(),
        {"action": "purge", "_selected_action": [dough.pk], "post": "yes", "reason": "offboarding"},
    )
    assert not PurgeRecord.objects.exists()
    # Given the permission, an admin may.
    staff.user_permissions.add(Permission.objects.get(codename="purge_company", **dashboard))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert b'value="purge"' in client.get(changelist()).content


def test_no_one_deletes_a_company_around_the_purge(estate, admin_client):
    dough, _, _ = estate
    page = admin_client.get(changelist())
    assert b'value="delete_selected"' not in page.content
    admin_client.post(reverse("admin:dashboard_company_delete", args=[dough.pk]), {"post": "yes"})
    assert Company.objects.filter(pk=dough.pk).exists()


def test_purge_records_are_read_only_in_the_admin(estate, admin_client):
    dough, _, _ = estate
    record = purge(dough)
    page = admin_client.get(reverse("admin:dashboard_purgerecord_changelist"))
    assert str(dough.company_id) in page.content.decode()
    delete = reverse("admin:dashboard_purgerecord_delete", args=[record.pk])
    admin_client.post(delete, {"post": "yes"})
    assert PurgeRecord.objects.filter(pk=record.pk).exists()
