"""The operations that keep the big tables online do what their plain twins do.

Migrations 0016 to 0022 use them: every test database is made through them,
the upgrade test (tests/deploy/test_upgrade.py) runs them on a populated
database, and here they run backwards too.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.apps import apps
from django.db import IntegrityError, NotSupportedError, connection, models, transaction
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from dashboard.db import online
from dashboard.models import Sync
from tests.support.databases import require_client_programs, schema, scratch_database
from tests.support.deploy import ROOT
from tests.support.factories import make_company, make_sync
from tests.support.services import only_on_postgresql
from tests.workers import database_url

pytestmark = pytest.mark.django_db(transaction=True)

postgresql_only = only_on_postgresql("concurrent index builds are PostgreSQL's")


def _apply(operation, *, backwards: bool = False) -> None:
    before = ProjectState.from_apps(apps)
    after = before.clone()
    operation.state_forwards("dashboard", after)
    with connection.schema_editor(atomic=False) as editor:
        if backwards:
            operation.database_backwards("dashboard", editor, after, before)
        else:
            operation.database_forwards("dashboard", editor, before, after)


def test_an_update_in_batches_changes_each_row_once_a_range_at_a_time():
    company = make_company()
    failed = [make_sync(company, code=5130) for _ in range(4)]
    passed = [make_sync(company, code=2000) for _ in range(3)]
    operation = online.UpdateInBatches(
        "dashboard_sync", "status_text = 'checked'", condition="status_code = 5130", batch_size=3
    )
    with CaptureQueriesContext(connection) as queries:
        _apply(operation)
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 3  # seven rows, three at a time
    texts = dict(Sync.objects.values_list("pk", "status_text"))
    assert {texts[s.pk] for s in failed} == {"checked"}
    assert {texts[s.pk] for s in passed} == {""}


def test_an_update_in_batches_goes_back_only_when_it_fills_the_migrations_new_columns():
    """Filling a column the same migration adds is undone by dropping the column: going
    back is nothing of its own. Any other update cannot be undone."""
    assert not online.UpdateInBatches("dashboard_sync", "status_text = ''").reversible
    filling = online.UpdateInBatches("dashboard_company", "n = 1", fills_new_columns=True)
    assert filling.reversible
    assert filling.deconstruct()[2]["fills_new_columns"] is True
    state = ProjectState.from_apps(apps)
    with connection.schema_editor(atomic=False) as editor:
        with CaptureQueriesContext(connection) as queries:
            filling.database_backwards("dashboard", editor, state, state)
        # (SQLite's schema editor says things of its own when it opens and closes.)
        assert not queries.captured_queries


@postgresql_only
def test_an_update_in_batches_refuses_to_run_in_one_transaction():
    operation = online.UpdateInBatches("dashboard_sync", "status_text = ''")
    with pytest.raises(NotSupportedError, match="atomic = False"), transaction.atomic():
        state = ProjectState.from_apps(apps)
        with connection.schema_editor(atomic=False) as editor:
            operation.database_forwards("dashboard", editor, state, state)


def _index_valid(name: str) -> bool | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


@postgresql_only
def test_an_index_whose_concurrent_build_failed_is_built_again():
    company = make_company()
    make_sync(company, code=2000)
    make_sync(company, code=2000)
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY sync_example ON dashboard_sync (status_code)"
        )
    assert _index_valid("sync_example") is False  # what a failed build leaves

    operation = online.AddIndexConcurrently(
        "sync", models.Index(fields=["status_code"], name="sync_example")
    )
    try:
        _apply(operation)
        assert _index_valid("sync_example") is True
    finally:
        _apply(operation, backwards=True)
    assert _index_valid("sync_example") is None


@postgresql_only
@pytest.mark.system
def test_migrating_back_to_the_previous_release_and_forward_again_changes_nothing():
    require_client_programs()
    with scratch_database("roundtrip") as url:
        env = {**os.environ, "DATABASE_URL": url}
        for args in (["migrate"], ["migrate", "dashboard", "0015"], ["migrate"]):
            done = subprocess.run(
                [sys.executable, "manage.py", *args, "--no-input"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        assert schema(url) == schema(database_url())
