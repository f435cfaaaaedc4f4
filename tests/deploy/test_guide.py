"""docs/deploy.md cannot drift: every command in it is run by a test or by CI.

Each shell command in the guide's code blocks (after `sudo` and `sudo -u
USER`) must match one entry of `RUN_BY`: the test that runs it, what CI
runs, or why this machine cannot (systemd as PID 1, nginx, root on the
target), and each entry must still match a command. The guide's paths
must exist, and a few commands are run here, as written.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from django.contrib.auth.models import User

from tests.support.deploy import ROOT
from tests.support.operator import production_file, with_environment
from tests.support.services import require
from tests.workers import database_url, redis_available

GUIDE = ROOT / "docs" / "deploy.md"
WITH_ENVIRONMENT = "/opt/synchealth/scripts/with-environment "

# Why some commands run on the operator's machine only.
SYSTEMD = (
    "needs systemd as PID 1, which this machine's containers lack; the units' own commands "
    "run in tests/deploy/test_units.py"
)
NGINX = (
    "needs nginx, not installed here; tests/deploy/test_units.py checks the example's headers "
    "against the environment"
)
ROOT_SETUP = "creates a system user or files under /etc on the target machine"
CI_INSTALL = (
    "CI: `make install` (.ci/run) makes .venv and installs the same pins, with the dev extras"
)
RESTORE_DRILL = (
    "tests/deploy/test_backup_restore.py::"
    "test_a_backup_restored_into_a_new_database_serves_the_same_pages"
)
UPGRADE = (
    "tests/deploy/test_upgrade.py::"
    "test_the_previous_release_upgrades_to_the_schema_of_a_fresh_install"
)
HERE = "tests/deploy/test_guide.py::"

RUN_BY = {
    r"adduser --system --group --home /var/lib/synchealth synchealth": ROOT_SETUP,
    r"python3 -m venv \.venv": CI_INSTALL,
    r"\.venv/bin/pip install --quiet -c constraints\.txt -e \.": CI_INSTALL,
    r"install (-d )?-m \d+ -o root -g synchealth .*/etc/synchealth.*": ROOT_SETUP,
    r'python3 -c "import secrets; print\(secrets\.token_urlsafe\(50\)\)"': HERE
    + "test_the_secret_key_command_makes_one_the_deploy_check_accepts",
    r"with-environment python manage\.py migrate": UPGRADE,
    r"with-environment python manage\.py createsuperuser": HERE
    + "test_an_administrator_is_made_through_the_environment",
    r"with-environment python manage\.py build_current_state": UPGRADE,
    r"with-environment python manage\.py build_problems": UPGRADE,
    r"with-environment python manage\.py check --deploy --fail-level WARNING": HERE
    + "test_the_secret_key_command_makes_one_the_deploy_check_accepts",
    r"with-environment scripts/backup /var/lib/synchealth/backups/\S+\.dump": RESTORE_DRILL,
    r"with-environment scripts/restore \S+\.dump synchealth_restored": RESTORE_DRILL,
    r"dropdb synchealth_restored": "tests/deploy/test_backup_restore.py::"
    "test_a_failed_restore_leaves_no_database_behind",
    r"systemd-analyze verify /etc/systemd/system/synchealth-\*": "tests/deploy/test_units.py::"
    "test_systemd_accepts_every_unit",
    r"cp deploy/synchealth-\*\.service deploy/synchealth-backup\.timer /etc/systemd/\S+": SYSTEMD,
    r"systemctl (daemon-reload|enable|start|stop|restart) .*|systemctl daemon-reload": SYSTEMD,
    r"journalctl -u synchealth-\w+ .*": SYSTEMD,
    r"cp deploy/nginx-synchealth\.conf /etc/nginx/.*|ln -s /etc/nginx/.*|nginx -t|"
    r"systemctl reload nginx": NGINX,
    r"redis-cli -u redis://127\.0\.0\.1:6379/0 llen celery": HERE
    + "test_the_queue_depth_command_counts_waiting_tasks",
    r"with-environment python manage\.py refresh --all --enqueue": "tests/test_commands.py::"
    "test_a_full_reconciliation_is_queued_by_hand",
    r"with-environment python manage\.py prune_history( --dry-run)?": "tests/retention/"
    "test_policy.py::test_the_command_reports_what_it_would_remove_then_removes_it",
    r"with-environment python manage\.py purge_company COMPANY_ID --by USERNAME "
    r"--reason erasure_request": "tests/retention/test_purge.py::"
    "test_the_command_erases_it_and_prints_the_record",
    r"curl -fsS https://synchealth\.example\.com/healthz": "tests/health/test_probes.py::"
    "test_healthz_answers_anyone_without_a_session_or_any_query",
    r"curl -fsS https://synchealth\.example\.com/readyz": "tests/health/test_probes.py::"
    "test_readyz_is_ready_when_database_broker_cache_and_migrations_are_fine",
    r'curl -fsS -H "Authorization: Bearer \$METRICS_TOKEN" '
    r"https://synchealth\.example\.com/metrics": "tests/health/test_metrics_access.py::"
    "test_the_token_lets_a_scraper_in_without_a_session",
}


def guide_commands() -> list[str]:
    """The commands of the guide's `sh` blocks, one a line, without `sudo`."""
    commands, block, pending = [], False, ""
    for line in GUIDE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            block = stripped == "```sh"
            continue
        if not block or not stripped or stripped.startswith("#"):
            continue
        stripped = re.sub(r"\s{2,}#.*$", "", stripped)
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        command = pending + stripped
        pending = ""
        commands.append(re.sub(r"^sudo (-u \w+ )?", "", command))
    return commands


def _entry(command: str, table: dict) -> list[str]:
    return [pattern for pattern in table if re.search(pattern, command)]


def test_every_command_in_the_guide_is_run_by_a_test_or_by_ci():
    commands = guide_commands()
    assert len(commands) > 20
    for command in commands:
        matched = _entry(command, RUN_BY)
        assert len(matched) == 1, f"{command!r} matches {matched or 'nothing'} in RUN_BY"
    for pattern in RUN_BY:
        assert any(re.search(pattern, c) for c in commands), f"no command matches {pattern!r}"


def test_every_test_named_in_the_table_exists():
    for where in set(RUN_BY.values()):
        if "::" not in where:
            assert where in (SYSTEMD, NGINX, ROOT_SETUP, CI_INSTALL)
            continue
        path, name = where.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), where


def test_the_guides_paths_exist():
    named = set(
        re.findall(r"`((?:deploy|scripts|tests|dashboard|docs)/[\w./-]+)`", GUIDE.read_text())
    )
    assert named
    for path in named:
        assert (ROOT / path).exists(), path


# --- Commands of the guide, run as written ---


@pytest.mark.system
def test_the_secret_key_command_makes_one_the_deploy_check_accepts(tmp_path):
    made = subprocess.run(
        ["python3", "-c", "import secrets; print(secrets.token_urlsafe(50))"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    assert len(made) >= 50
    deployment = production_file(tmp_path / "synchealth.env", SECRET_KEY=made)
    done = with_environment(
        deployment, "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout


@pytest.mark.system
def test_an_administrator_is_made_through_the_environment(transactional_db, tmp_path):
    deployment = production_file(
        tmp_path / "synchealth.env",
        DATABASE_URL=database_url(),
        DJANGO_SUPERUSER_PASSWORD="an-admin-password-for-tests",
    )
    done = with_environment(
        deployment, "python", "manage.py", "createsuperuser",
        "--no-input", "--username", "admin", "--email", "admin@example.com",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    admin = User.objects.get(username="admin")
    # (Hashed by the deployment's own hasher, which this test run does not load.)
    assert admin.is_superuser and admin.is_staff and admin.has_usable_password()


@pytest.mark.system
def test_the_queue_depth_command_counts_waiting_tasks():
    require(redis_available(), "Redis")
    import redis

    from synchealth.celery import app

    url = os.environ.get("TEST_UNITS_REDIS_URL", "redis://127.0.0.1:6379/14")
    redis.Redis.from_url(url).delete("celery")
    try:
        with app.connection_for_write(url) as connection:
            for _ in range(3):
                app.send_task("dashboard.reconcile", connection=connection)
        depth = subprocess.run(
            ["redis-cli", "-u", url, "llen", "celery"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()  # fmt: skip
        assert depth == "3"
    finally:
        redis.Redis.from_url(url).delete("celery")
