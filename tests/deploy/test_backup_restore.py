"""The restore drill: a backup restored into a new database serves the same pages.

A mirrored estate (a few hundred syncs, through a real refresh, with the
rollup and the rankings counted) is backed up with `scripts/backup` and
restored with `scripts/restore` into a new database. The copy holds the same
tables, indexes, constraints, triggers, rows and ID sequences, needs no
migration, and a Django process on each database renders the same pages for
a support viewer (the dashboard over several ranges, the history with
filters, sorts and second pages, each tab of a failed and a successful sync,
a company, the CSV export), with the clock pinned and CSRF tokens masked
(`scripts/compare_pages.py`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dashboard import ingest, rankings, rollup
from sandbox import estate
from tests.support.databases import (
    require_client_programs,
    row_counts,
    schema_objects,
    scratch_database,
    sequences,
)
from tests.support.deploy import ROOT
from tests.support.operator import production_file, with_environment
from tests.support.services import only_on_postgresql
from tests.workers import database_url

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]

postgresql_only = only_on_postgresql("backups are of a PostgreSQL deployment")

COMPARE = str(ROOT / "scripts" / "compare_pages.py")
# Pages every restore must serve, among those compare_pages renders.
MUST_SERVE = [
    "dashboard-7d",
    "dashboard-all",
    "history",
    "history-failed",
    "history-company",
    "sync-failed",
    "sync-failed-items",
    "sync-failed-config",
    "sync-success-items",
    "company",
    "history-csv",
]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def mirrored_estate(transactional_db, in_process_upstream, viewer):
    """Ten companies of thirty syncs, mirrored; the rollup and rankings counted."""
    estate.build_estate(companies=10, syncs_per_company=30, items_per_sync=6, days=30, seed=11)
    for company in ingest.refresh_companies(in_process_upstream):
        ingest.refresh_company(in_process_upstream, company)
    rollup.refresh()
    rankings.refresh()


@postgresql_only
def test_a_backup_restored_into_a_new_database_serves_the_same_pages(mirrored_estate, tmp_path):
    require_client_programs()
    original = database_url()
    # The renders: each keeps its cache in its own process, so nothing read
    # from the first can reach the second.
    env = {
        **os.environ,
        "CELERY_BROKER_URL": "memory://",
        "REDIS_URL": "",
        "ALLOWED_HOSTS": "testserver",
    }
    backup = tmp_path / "synchealth.dump"
    deployment = production_file(tmp_path / "synchealth.env", DATABASE_URL=original)
    with scratch_database("restored", create=False) as restored:
        # As docs/deploy.md runs them.
        done = with_environment(deployment, "scripts/backup", str(backup))
        assert done.returncode == 0, done.stderr
        assert backup.stat().st_mode & 0o777 == 0o600
        assert not backup.with_name("synchealth.dump.partial").exists()
        name = restored.rsplit("/")[-1]
        done = with_environment(deployment, "scripts/restore", str(backup), name)
        assert done.returncode == 0, done.stderr

        assert schema_objects(restored) == schema_objects(original)
        assert row_counts(restored) == row_counts(original)
        assert sequences(restored) == sequences(original)
        moved = production_file(tmp_path / "restored.env", DATABASE_URL=restored)
        check = with_environment(moved, "python", "manage.py", "migrate", "--check")
        assert check.returncode == 0, check.stdout + check.stderr

        renders = {}
        for side, url in (("original", original), ("restored", restored)):
            renders[side] = tmp_path / side
            command = [sys.executable, COMPARE, "render", str(renders[side])]
            done = _run([*command, "--database-url", url, "--user", "viewer"], env)
            assert done.returncode == 0, done.stderr

    for page in MUST_SERVE:
        status = (renders["restored"] / f"{page}.html").read_text().split(" ", 1)[0]
        assert status == "200", page
    done = _run(
        [sys.executable, COMPARE, "diff", str(renders["original"]), str(renders["restored"])], env
    )
    assert done.returncode == 0, done.stdout
    assert done.stdout.endswith(" pages compared, 0 differ\n")


@postgresql_only
def test_a_restore_never_writes_into_an_existing_database(transactional_db, tmp_path):
    require_client_programs()
    env = {**os.environ, "DATABASE_URL": database_url()}
    backup = tmp_path / "synchealth.dump"
    assert _run([str(ROOT / "scripts" / "backup"), str(backup)], env).returncode == 0
    with scratch_database("existing") as existing:
        done = _run([str(ROOT / "scripts" / "restore"), str(backup), existing.rsplit("/")[-1]], env)
        assert done.returncode == 1
        assert "already exists" in done.stderr
        assert row_counts(existing) == {}


@postgresql_only
def test_a_failed_restore_leaves_no_database_behind(transactional_db, tmp_path):
    require_client_programs()
    env = {**os.environ, "DATABASE_URL": database_url()}
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP" + b"\0" * 64)
    with scratch_database("broken", create=False) as url:
        done = _run([str(ROOT / "scripts" / "restore"), str(broken), url.rsplit("/")[-1]], env)
        assert done.returncode == 1
        assert "was dropped again" in done.stderr
        with pytest.raises(Exception, match="does not exist"):
            row_counts(url)


def test_the_scripts_refuse_a_database_that_is_not_postgresql(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    done = _run([str(ROOT / "scripts" / "backup"), str(tmp_path / "x.dump")], env)
    assert done.returncode == 1
    assert "is not a PostgreSQL database" in done.stderr
