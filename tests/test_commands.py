"""The commands `make run` relies on, and the settings' refusal of a default secret."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from sandbox.models import Company, Sync, SyncKind

ROOT = Path(__file__).resolve().parent.parent


def test_seed_builds_the_demo_estate_once(transactional_db, capsys):
    call_command("sandbox_seed", "--preset", "demo", "--companies", "4", "--if-empty")
    assert Company.objects.count() == 4
    call_command("sandbox_seed", "--preset", "demo", "--if-empty")
    assert Company.objects.count() == 4
    assert "already present" in capsys.readouterr().out
    call_command("sandbox_seed", "--companies", "3", "--reset")
    assert Company.objects.count() == 3


def test_demo_login_is_created_once_with_a_random_password(db, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("demo_login")
    password = (tmp_path / "demo-login.txt").read_text().strip()
    assert len(password) >= 12
    assert f"demo / {password}" in capsys.readouterr().out
    user = get_user_model().objects.get(username="demo")
    assert user.check_password(password)
    call_command("demo_login")
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert (tmp_path / "demo-login.txt").read_text().strip() == password


def test_traffic_generator_creates_expense_syncs_over_http(sandbox_url, api_key, small_estate):
    before = Sync.objects.filter(kind=SyncKind.EXPENSES).count()
    call_command(
        "sandbox_traffic",
        "--base-url",
        sandbox_url,
        "--api-key",
        api_key,
        "--count",
        "3",
        "--interval",
        "0",
        "--seed",
        "5",
    )
    assert Sync.objects.filter(kind=SyncKind.EXPENSES).count() == before + 3


@pytest.mark.system  # starts Python in a process of its own
@pytest.mark.parametrize(
    ("extra", "refuses"),
    [
        ({}, True),
        (
            {
                "SECRET_KEY": "a-real-secret-from-the-environment-0123456789",
                "CODAT_BASE_URL": "https://api.codat.io",
            },
            False,
        ),
        ({"DEBUG": "1"}, False),
    ],
)
def test_production_settings_refuse_the_default_secret(extra, refuses):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "DEBUG", "SYNCHEALTH_ALLOW_INSECURE_SECRET")
    }
    env.update(extra)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
            "'synchealth.settings'; django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (result.returncode != 0) is refuses
    if refuses:
        assert "SECRET_KEY is not set" in result.stderr


def test_webhook_consumers_are_registered_from_the_command_line(db, capsys):
    from sandbox.models import WebhookConsumer

    call_command("sandbox_webhook", "--url", "http://127.0.0.1:9/hook", "--format", "legacy")
    consumer = WebhookConsumer.objects.get()
    assert consumer.secret.startswith("whsec_") and consumer.event_format == "legacy"
    assert consumer.secret in capsys.readouterr().out
    call_command("sandbox_webhook", "--url", "http://127.0.0.1:9/hook", "--disable")
    assert WebhookConsumer.objects.get().enabled is False
    call_command("sandbox_webhook")
    assert "http://127.0.0.1:9/hook  current  disabled" in capsys.readouterr().out
    with pytest.raises(Exception, match="whsec_"):
        call_command("sandbox_webhook", "--url", "http://x/", "--secret", "plain")


def test_a_full_reconciliation_is_queued_by_hand(db, capsys):
    """Beat polls by priority; the full reconciliation (docs/deploy.md) is queued by hand."""
    from unittest import mock

    from dashboard.tasks import reconcile_task

    with mock.patch.object(reconcile_task, "delay") as delay:
        call_command("refresh", "--all", "--enqueue")
    delay.assert_called_once_with()
    assert "Queued a reconciliation of every company." in capsys.readouterr().out
