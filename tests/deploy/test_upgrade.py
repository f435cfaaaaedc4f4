"""An upgrade from the previous release: its schema with a few thousand syncs
migrates forward, builds its current state, and serves.

The database is installed at the previous release and filled through that
release's models (`tests/support/previous_release.py`), then upgraded with
the commands docs/deploy.md gives: `manage.py migrate`, then
`manage.py build_current_state` and `manage.py build_problems`. The result
has exactly the schema of a fresh install, and the pages count what the
history says: the outstanding
items, syncs and companies on the dashboard, every sync in the history, and a
resolved, a failed-again and a running sync as such.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import require_client_programs, schema, scratch_database
from tests.support.deploy import ROOT
from tests.support.operator import production_file, with_environment
from tests.support.services import only_on_postgresql
from tests.workers import database_url

pytestmark = [
    pytest.mark.system,
    # The test database is compared with, so it must be made.
    pytest.mark.django_db,
    pytest.mark.timeout(300),
    only_on_postgresql("upgrades of a PostgreSQL deployment"),
]


def _run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _manage(env_file: Path, *args: str) -> str:
    """`manage.py ARGS` as docs/deploy.md runs it (production settings, from a file)."""
    done = with_environment(env_file, "python", "manage.py", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _stat(page: str, name: str) -> int:
    found = re.search(rf'data-stat="{name}"><span class="n">([\d,]+)</span>', page)
    assert found, f"no {name} on the dashboard"
    return int(found[1].replace(",", ""))


@pytest.fixture(scope="module")
def upgraded(django_db_setup, tmp_path_factory):
    """The previous release, filled and upgraded: (an environment on it for the
    test's own tools, what its pages must show, what the backfill said)."""
    require_client_programs()
    with scratch_database("upgrade") as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": "memory://",
            "REDIS_URL": "",
            "ALLOWED_HOSTS": "testserver",
        }
        expected = json.loads(
            _run(env, sys.executable, "-m", "tests.support.previous_release").stdout
        )
        deployment = production_file(
            tmp_path_factory.mktemp("upgrade") / "synchealth.env", DATABASE_URL=url
        )
        _manage(deployment, "migrate", "--no-input")
        built = _manage(deployment, "build_current_state")
        built += _manage(deployment, "build_problems")
        _manage(deployment, "migrate", "--check")
        yield env, expected, built


def test_the_previous_release_upgrades_to_the_schema_of_a_fresh_install(upgraded):
    env, _, built = upgraded
    assert schema(env["DATABASE_URL"]) == schema(database_url())
    assert "Current state built for 25 companies" in built
    assert "Built the problems of 25 companies" in built


def test_the_upgrade_groups_every_outstanding_item_into_problems(upgraded):
    _, expected, built = upgraded
    assert f"{expected['outstanding_items']:,} outstanding transactions" in built


def test_the_upgraded_deployment_serves_what_its_history_says(upgraded):
    env, expected, _ = upgraded
    history = "/syncs/?range=all"
    urls = {
        "dashboard": "/?range=all",
        "history": history,
        "outstanding": history + "&state=outstanding",
        "resolved": f"/syncs/{expected['resolved']}/",
        "failed_again": f"/syncs/{expected['failed_again']}/",
        "not_retried": f"/syncs/{expected['not_retried']}/",
        # The push items are a tab of their own, away from the overview's counts.
        "not_retried_items": f"/syncs/{expected['not_retried']}/?tab=items",
        "running": f"/syncs/{expected['running']}/",
        "csv": "/syncs/export.csv?range=all",
    }
    fetched = json.loads(
        _run(
            env, sys.executable, "-m", "tests.support.fetch_pages", "viewer", *urls.values()
        ).stdout
    )
    pages = {name: fetched[url] for name, url in urls.items()}
    assert {name: status for name, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
    page = {name: body for name, (_, body) in pages.items()}

    assert _stat(page["dashboard"], "outstanding_items") == expected["outstanding_items"]
    assert _stat(page["dashboard"], "outstanding_syncs") == expected["outstanding_syncs"]
    assert _stat(page["dashboard"], "outstanding_companies") == expected["outstanding_companies"]
    assert _stat(page["dashboard"], "total") == expected["syncs"]

    count = re.compile(r'data-testid="result-count">([\d,]+) syncs?<')
    assert int(count.search(page["history"])[1].replace(",", "")) == expected["syncs"]
    assert int(count.search(page["outstanding"])[1]) == expected["outstanding_syncs"]
    assert len(page["csv"].splitlines()) == expected["syncs"] + 1

    assert 'data-testid="resolved">Resolved</span> by retry' in page["resolved"]
    assert "2 items</span> still to push" in page["failed_again"]
    assert "2 items</span> still to push" in page["not_retried"]
    assert page["not_retried_items"].count("item-push-error") >= 2
    assert "In progress" in page["running"]
