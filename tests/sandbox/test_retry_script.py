"""Scripted retries and the readings of what a retry re-pushes.

A retry's item outcomes are random unless a `RetryScript` fixes them; these
tests script them through the service, the command and the admin, start the
retry over HTTP as the dashboard does, finalise it as the worker would, and
read the outcome back over HTTP.
"""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from sandbox import services
from sandbox.models import (
    Company,
    Item,
    ItemStatus,
    Platform,
    RetryRepush,
    RetryScript,
    SandboxSettings,
    Sync,
)


def _company(name: str = "Scripted Ltd") -> Company:
    now = timezone.now()
    return Company.objects.create(
        name=name, created=now, platform=Platform.XERO, config_modified=now
    )


@pytest.fixture
def company(transactional_db) -> Company:
    return _company()


@pytest.fixture
def random_retries_fail(sandbox_config: SandboxSettings) -> SandboxSettings:
    """Unscripted retries fail every item, so a script's effect cannot be luck."""
    sandbox_config.retry_success_rate = 0.0
    sandbox_config.save()
    return sandbox_config


def _set_repush(mode: str) -> None:
    config = SandboxSettings.load()
    config.retry_repush = mode
    config.save()


def _failed_sync(api, company: Company, count: int = 4) -> tuple[Sync, list[str]]:
    """A sync created over the API whose items were all refused (5130)."""
    body = [
        {"id": str(uuid.uuid4()), "type": "Payment", "issueDate": "2026-11-01", "currency": "GBP"}
        for _ in range(count)
    ]
    response = api.post(
        f"/companies/{company.company_id}/sync/expenses/expense-transactions", json=body
    )
    assert response.status_code == 200
    sync = Sync.objects.get(sync_id=response.json()["syncId"])
    Sync.objects.filter(pk=sync.pk).update(
        finalized=True, status_code=5130, error_message="Data push error"
    )
    Item.objects.filter(sync=sync).update(
        status=ItemStatus.PUSH_ERROR, message="The account period has closed."
    )
    return sync, [tx["id"] for tx in body]


def _retry(api, company: Company, *named: Sync, key: str | None = None) -> Sync:
    """POST initiate-sync naming `named`, as the dashboard's retry does."""
    response = api.post(
        f"/companies/{company.company_id}/sync/expenses/syncs",
        json={"syncIds": [str(s.sync_id) for s in named]},
        headers={"Idempotency-Key": key} if key else {},
    )
    assert response.status_code == 202
    return Sync.objects.get(sync_id=response.json()["syncId"])


def _finish(api, sync: Sync) -> tuple[int, list[tuple[str, str, str | None]]]:
    """Finalise `sync` as the worker would; its status code and items, read over HTTP."""
    assert services.finalize_sync(sync.pk) is True
    base = f"/companies/{sync.company.company_id}/sync/expenses/syncs/{sync.sync_id}"
    code = api.get(f"{base}/status").json()["syncStatusCode"]
    items = api.get(f"{base}/transactions").json()["results"]
    return code, [(i["transactionId"], i["status"], i.get("message")) for i in items]


def _pushed(retry: Sync) -> list[str]:
    return [
        str(t) for t in retry.items.order_by("position").values_list("transaction_id", flat=True)
    ]


# The script's two forms, through the HTTP API.


def test_complete_n_completes_the_first_n_in_push_order_and_the_rest_fail_again(
    api, company, random_retries_fail
):
    original, ids = _failed_sync(api, company)
    script = services.script_next_retry(company, complete=2)

    retry = _retry(api, company, original)
    code, items = _finish(api, retry)

    assert code == 5130
    assert [(tid, status) for tid, status, _ in items] == [
        (ids[0], "Completed"),
        (ids[1], "Completed"),
        (ids[2], "PushError"),
        (ids[3], "PushError"),
    ]
    assert [message for _, _, message in items[:2]] == [None, None]
    # Failures read like a real push error: a Codat wrapper with a correlation ID.
    assert all("Correlation ID: " in message for _, _, message in items[2:])
    script.refresh_from_db()
    assert script.used_by == retry
    assert script.used_at is not None


def test_fail_ids_fail_again_and_every_other_item_completes(api, company, random_retries_fail):
    original, ids = _failed_sync(api, company)
    services.script_next_retry(company, fail_transaction_ids=[ids[3], ids[1].upper()])

    code, items = _finish(api, _retry(api, company, original))

    assert code == 5130
    assert {tid: status for tid, status, _ in items} == {
        ids[0]: "Completed",
        ids[1]: "PushError",
        ids[2]: "Completed",
        ids[3]: "PushError",
    }


@pytest.mark.parametrize(
    "complete, code, statuses",
    [
        (0, 5130, {"PushError"}),
        (4, 2000, {"Completed"}),
        (10, 2000, {"Completed"}),  # more than the retry pushes: all of them
    ],
)
def test_the_retry_ends_2000_only_when_every_item_completes(
    api, company, sandbox_config, complete, code, statuses
):
    sandbox_config.retry_success_rate = 1.0 if complete == 0 else 0.0  # the opposite of the script
    sandbox_config.save()
    original, _ = _failed_sync(api, company)
    services.script_next_retry(company, complete=complete)

    got, items = _finish(api, _retry(api, company, original))

    assert got == code
    assert {status for _, status, _ in items} == statuses


def test_a_script_decides_even_for_a_company_with_a_standing_problem(api, company):
    original, _ = _failed_sync(api, company)
    Company.objects.filter(pk=company.pk).update(failure_mode=4220)
    services.script_next_retry(company, complete=4)

    code, items = _finish(api, _retry(api, company, original))

    assert code == 2000
    assert {status for _, status, _ in items} == {"Completed"}


def test_a_listed_transaction_the_retry_does_not_push_is_not_among_its_items(
    api, company, random_retries_fail
):
    _, first_ids = _failed_sync(api, company)
    second, _ = _failed_sync(api, company)
    services.script_next_retry(company, fail_transaction_ids=[first_ids[0]])

    code, items = _finish(api, _retry(api, company, second))

    assert code == 2000
    assert first_ids[0] not in {tid for tid, _, _ in items}
    assert {status for _, status, _ in items} == {"Completed"}


# Which retry uses which script.


def test_a_script_is_used_by_one_retry_only(api, company, random_retries_fail):
    original, _ = _failed_sync(api, company)
    script = services.script_next_retry(company, complete=4)

    first = _retry(api, company, original)
    second = _retry(api, company, original)
    assert _finish(api, first)[0] == 2000
    code, items = _finish(api, second)

    assert code == 5130  # unscripted: the random outcome, every item failing here
    assert {status for _, status, _ in items} == {"PushError"}
    script.refresh_from_db()
    assert script.used_by == first
    assert RetryScript.objects.filter(used_by=second).exists() is False


def test_a_replayed_initiate_does_not_use_a_second_script(api, company):
    original, _ = _failed_sync(api, company)
    services.script_next_retry(company, complete=1)
    services.script_next_retry(company, complete=3)

    first = _retry(api, company, original, key="replay-1")
    again = _retry(api, company, original, key="replay-1")

    assert again == first
    assert list(
        RetryScript.objects.filter(used_at__isnull=True).values_list("complete", flat=True)
    ) == [3]


def test_company_scripts_come_before_any_company_ones_and_oldest_first(
    api, company, random_retries_fail
):
    other = _company("Other Ltd")
    anyone = services.script_next_retry(None, complete=0)
    older = services.script_next_retry(company, complete=4)
    newer = services.script_next_retry(company, complete=1)
    original, _ = _failed_sync(api, company)
    elsewhere, _ = _failed_sync(api, other)

    first = _retry(api, company, original)  # its own script, though an older any-company waits
    other_retry = _retry(api, other, elsewhere)  # the any-company one, never the company's
    second = _retry(api, company, original)
    third = _retry(api, company, original)

    def used_by(script: RetryScript) -> Sync | None:
        script.refresh_from_db()
        return script.used_by

    assert (used_by(anyone), used_by(older), used_by(newer)) == (other_retry, first, second)
    assert RetryScript.objects.filter(used_by=third).exists() is False
    assert [status for _, status, _ in _finish(api, first)[1]] == ["Completed"] * 4
    assert [status for _, status, _ in _finish(api, second)[1]] == ["Completed"] + ["PushError"] * 3


def test_an_any_company_script_waits_for_the_next_retry_of_any_company(api, company):
    original, _ = _failed_sync(api, company)
    script = services.script_next_retry(None, complete=4)

    retry = _retry(api, company, original)

    script.refresh_from_db()
    assert script.used_by == retry
    assert _finish(api, retry)[0] == 2000


def test_an_expense_sync_never_uses_a_script(api, company):
    script = services.script_next_retry(company, complete=0)
    _failed_sync(api, company)
    script.refresh_from_db()
    assert script.used_at is None


# Bad input gets a clear error.


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Give how many items complete or which transactions fail again."),
        ({"complete": 1, "fail_transaction_ids": []}, "not both"),
        ({"complete": -1}, "Must be a whole number of items, 0 or more (got -1)."),
        ({"complete": "2"}, "Must be a whole number of items, 0 or more (got '2')."),
        ({"complete": True}, "Must be a whole number of items"),
        ({"fail_transaction_ids": []}, "Name at least one transaction."),
        ({"fail_transaction_ids": "not-a-list"}, "Must be a list of transaction IDs."),
        ({"fail_transaction_ids": ["tx-1"]}, "'tx-1' is not a transaction ID (a UUID)."),
    ],
)
def test_bad_scripts_are_refused_with_a_clear_error(db, kwargs, message):
    company = _company()
    with pytest.raises(ValidationError) as refused:
        services.script_next_retry(company, **kwargs)
    assert message in " ".join(refused.value.messages)
    assert not RetryScript.objects.exists()


def test_a_transaction_the_company_never_pushed_is_refused(db):
    company, other = _company(), _company("Other Ltd")
    theirs = uuid.uuid4()
    services.create_expense_sync(company=other, transaction_ids=[theirs])
    unknown = uuid.uuid4()

    with pytest.raises(ValidationError) as refused:
        services.script_next_retry(company, fail_transaction_ids=[theirs, unknown])

    message = " ".join(refused.value.messages)
    assert f"Not a transaction of company {company.company_id}: " in message
    assert str(theirs) in message and str(unknown) in message
    # Any company's script may name any transaction the sandbox holds.
    script = services.script_next_retry(None, fail_transaction_ids=[theirs])
    assert script.fail_transaction_ids == [str(theirs)]
    with pytest.raises(ValidationError, match="Not a transaction of any company"):
        services.script_next_retry(None, fail_transaction_ids=[unknown])


@pytest.mark.parametrize("complete, fail_ids", [(None, None), (2, [str(uuid.UUID(int=1))])])
def test_the_database_refuses_a_script_of_neither_or_both_forms(db, complete, fail_ids):
    with pytest.raises(IntegrityError), transaction.atomic():
        RetryScript.objects.create(company=None, complete=complete, fail_transaction_ids=fail_ids)


# The command.


def _command(*args: str) -> str:
    out = StringIO()
    call_command("sandbox_script_retry", *args, stdout=out)
    return out.getvalue()


def test_the_command_scripts_and_says_what_it_scripted(db):
    company = _company()
    tids = [uuid.uuid4(), uuid.uuid4()]
    services.create_expense_sync(company=company, transaction_ids=tids)
    cid = str(company.company_id)

    first = _command(cid, "--complete", "2")
    second = _command(cid, "--fail-id", str(tids[1]), "--fail-id", str(tids[0]))

    assert first == (
        f"Scripted the next retry of Scripted Ltd ({cid}): "
        "the first 2 re-pushed item(s) complete, the rest fail again.\n"
    )
    assert second == (
        f"Scripted the next retry of Scripted Ltd ({cid}): 2 transaction(s) fail again "
        f"({tids[1]}, {tids[0]}), all others complete.\n"
        "1 earlier script(s) of this company wait ahead of it; "
        "it applies to retry number 2 from now.\n"
    )
    scripts = RetryScript.objects.filter(company=company).order_by("pk")
    assert [(s.complete, s.fail_transaction_ids) for s in scripts] == [
        (2, None),
        (None, [str(tids[1]), str(tids[0])]),
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--complete", "-3"], "Must be a whole number of items, 0 or more (got -3)."),
        (["--complete", "1", "--fail-id", "x"], "not allowed with argument"),
        ([], "one of the arguments --complete --fail-id is required"),
        (["--fail-id", str(uuid.UUID(int=7))], "Not a transaction of company"),
    ],
)
def test_the_command_refuses_bad_input(db, args, message):
    company = _company()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _command(str(company.company_id), *args)
    assert not RetryScript.objects.exists()


def test_the_command_refuses_an_unknown_company(db):
    with pytest.raises(CommandError, match="is not a company ID"):
        _command("acme", "--complete", "1")
    missing = uuid.uuid4()
    with pytest.raises(CommandError, match=f"No sandbox company {missing}"):
        _command(str(missing), "--complete", "1")


# The admin (its sandbox tables exist only while the sandbox is enabled).


def test_the_admin_scripts_a_retry_with_the_same_rules(admin_client, sandbox_enabled):
    company = _company()
    tid = uuid.uuid4()
    services.create_expense_sync(company=company, transaction_ids=[tid])
    add = reverse("admin:sandbox_retryscript_add")

    refused = admin_client.post(
        add, {"company": company.pk, "complete": "1", "fail_transaction_ids": str(tid)}
    )
    assert refused.status_code == 200
    assert "not both" in refused.content.decode()
    unknown = admin_client.post(
        add, {"company": company.pk, "fail_transaction_ids": str(uuid.UUID(int=9))}
    )
    assert "Not a transaction of company" in unknown.content.decode()
    assert not RetryScript.objects.exists()

    saved = admin_client.post(add, {"company": company.pk, "fail_transaction_ids": f" {tid},\n"})
    assert saved.status_code == 302
    script = RetryScript.objects.get()
    assert (script.company, script.complete, script.fail_transaction_ids) == (
        company,
        None,
        [str(tid)],
    )


def test_the_admin_shows_a_used_script_read_only(admin_client, sandbox_enabled):
    company = _company()
    script = services.script_next_retry(company, complete=1)
    retry = services.create_expense_sync(company=company, transaction_ids=[])
    RetryScript.objects.filter(pk=script.pk).update(used_by=retry, used_at=timezone.now())

    page = admin_client.get(reverse("admin:sandbox_retryscript_change", args=[script.pk]))
    listing = admin_client.get(reverse("admin:sandbox_retryscript_changelist"))

    assert page.status_code == 200
    assert "Save" not in page.content.decode()
    assert "the first 1 re-pushed item(s) complete" in listing.content.decode()


def test_the_admin_edits_the_repush_reading(admin_client, sandbox_enabled, sandbox_config):
    page = reverse("admin:sandbox_sandboxsettings_change", args=[sandbox_config.pk])
    assert 'name="retry_repush"' in admin_client.get(page).content.decode()
    # The form as it stands (unticked boxes and empty fields are not posted), one choice changed.
    data = {
        name: value
        for name, value in model_to_dict(sandbox_config).items()
        if value is not None and value is not False
    }
    data["retry_repush"] = RetryRepush.NAMED

    assert admin_client.post(page, data).status_code == 302
    assert SandboxSettings.load().retry_repush == RetryRepush.NAMED


# What a retry re-pushes, under each reading, along a chain.


@pytest.fixture
def chain(api, company, random_retries_fail) -> tuple[Sync, Sync, list[str]]:
    """An original with 4 failed items; retry 1 completed the first 2 (scripted)."""
    original, ids = _failed_sync(api, company)
    services.script_next_retry(company, complete=2)
    first = _retry(api, company, original)
    _finish(api, first)
    return original, first, ids


@pytest.mark.parametrize(
    "mode, name, pushed, twice",
    [
        (RetryRepush.UNPUSHED, "original", [2, 3], []),
        (RetryRepush.NAMED, "original", [0, 1, 2, 3], [0, 1]),
        (RetryRepush.EVERYTHING, "original", [0, 1, 2, 3], [0, 1]),
        (RetryRepush.UNPUSHED, "retry 1", [2, 3], []),
        (RetryRepush.NAMED, "retry 1", [2, 3], []),
        (RetryRepush.EVERYTHING, "retry 1", [0, 1, 2, 3], [0, 1]),
    ],
)
def test_what_a_retry_re_pushes_under_each_reading(api, company, chain, mode, name, pushed, twice):
    original, first, ids = chain
    _set_repush(mode)

    retry = _retry(api, company, original if name == "original" else first)

    assert _pushed(retry) == [ids[i] for i in pushed]
    completed_before = {
        str(t)
        for t in Item.objects.filter(sync=first, status=ItemStatus.COMPLETED).values_list(
            "transaction_id", flat=True
        )
    }
    assert [tid for tid in _pushed(retry) if tid in completed_before] == [ids[i] for i in twice]


def test_naming_the_original_and_its_retry_pushes_each_transaction_once(api, company, chain):
    original, first, ids = chain
    _set_repush(RetryRepush.EVERYTHING)

    retry = _retry(api, company, original, first)

    assert _pushed(retry) == ids
