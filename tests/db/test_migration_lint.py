"""Every migration after the previous release keeps the big tables online.

The syncs, push items and current state are large and in use while a
deployment runs `manage.py migrate`. A new dashboard migration that builds or
drops an index on them must do it concurrently, one that changes their rows
must do it in batches, and one that adds a constraint or rewrites a column
must find another way (`dashboard.db.online` says how). Migrations up to the
previous release (0015, what deployments run today) are applied everywhere
and are not checked. A table created by the same migration is new and empty,
and free.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.postgres import operations as postgres
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from dashboard.db import online

PREVIOUS_RELEASE = "0015_bulk_retry_state_choices"
BIG_TABLES = re.compile(r'\b"?dashboard_(sync|pushitem|transactionstate)"?(?!\w)', re.IGNORECASE)
ROW_CHANGE = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+\"?dashboard_", re.IGNORECASE)
LOCKING_DDL = re.compile(
    r"\b(CREATE\s+(UNIQUE\s+)?INDEX(?!\s+CONCURRENTLY)|DROP\s+INDEX(?!\s+CONCURRENTLY)|ALTER\s+TABLE)\b",
    re.IGNORECASE,
)


def _sql_text(sql) -> str:
    if isinstance(sql, str):
        return sql
    return "\n".join(part if isinstance(part, str) else part[0] for part in sql)


def _field_indexed(field) -> bool:
    return bool(field.db_index or field.unique)


def _column_changes(old, new) -> bool:
    """Whether the field's column changes (Django's own rule: attributes such
    as help_text and choices live in Python only)."""
    _, old_path, old_args, old_kwargs = old.deconstruct()
    _, new_path, new_args, new_kwargs = new.deconstruct()
    for attribute in old.non_db_attrs:
        old_kwargs.pop(attribute, None)
        new_kwargs.pop(attribute, None)
    return (old_path, old_args, old_kwargs) != (new_path, new_args, new_kwargs)


def problems(migration, state: ProjectState, app_label: str = "dashboard") -> list[str]:
    """What in `migration` (applied on `state`) would hold a long lock on a big table."""
    found: list[str] = []
    created: set[str] = set()

    def big(operation) -> bool:
        name = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", "")
        return name in online.BIG_MODELS and name not in created

    def check(operation, state: ProjectState, in_transaction: bool) -> None:
        where = f"{migration.name}: {operation.describe()}"
        if isinstance(operation, online.InTransaction):
            for inner in operation.operations:
                check(inner, state, True)
            return
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            scratch = state.clone()
            for inner in operation.database_operations:
                check(inner, scratch, in_transaction)
            operation.state_forwards(app_label, state)
            return
        commits_itself = isinstance(
            operation,
            postgres.NotInTransactionMixin | online.UpdateInBatches,
        )
        if commits_itself and (migration.atomic or in_transaction):
            found.append(
                f"{where}: must run outside a transaction (atomic = False, not in a group)"
            )
        if isinstance(operation, migrations.CreateModel):
            created.add(operation.name_lower)
        elif isinstance(operation, migrations.AddIndex | migrations.RemoveIndex) and big(operation):
            if not isinstance(
                operation, postgres.AddIndexConcurrently | postgres.RemoveIndexConcurrently
            ):
                found.append(f"{where}: use online.AddIndexConcurrently / RemoveIndexConcurrently")
        elif isinstance(
            operation,
            migrations.AddConstraint
            | migrations.RemoveConstraint
            | migrations.AlterUniqueTogether
            | migrations.AlterIndexTogether,
        ) and big(operation):
            found.append(f"{where}: checks or indexes every row under a lock")
        elif isinstance(operation, migrations.AddField) and big(operation):
            if _field_indexed(operation.field) and not isinstance(
                operation, online.AddFieldIndexConcurrently
            ):
                found.append(f"{where}: indexed under a lock; use online.AddFieldIndexConcurrently")
            if operation.field.unique:
                found.append(f"{where}: a unique column is indexed under a lock")
        elif isinstance(operation, migrations.AlterField) and big(operation):
            old = state.models[app_label, operation.model_name_lower].fields[operation.name]
            if not isinstance(operation, online.DropFieldIndexConcurrently) and _column_changes(
                old, operation.field
            ):
                found.append(
                    f"{where}: changes a big table's column under a lock (to drop its index: "
                    f"online.DropFieldIndexConcurrently)"
                )
        elif isinstance(operation, migrations.RunSQL):
            text = _sql_text(operation.sql)
            if BIG_TABLES.search(text) and (ROW_CHANGE.search(text) or LOCKING_DDL.search(text)):
                found.append(f"{where}: raw SQL on a big table; use online.UpdateInBatches")
        elif isinstance(operation, migrations.RunPython) and not getattr(
            operation.code, "holds_no_long_locks", False
        ):
            found.append(
                f"{where}: {operation.code.__name__} may change a big table's rows in one "
                f"transaction; change them in batches and mark it @online.holds_no_long_locks"
            )
        operation.state_forwards(app_label, state)

    for operation in migration.operations:
        check(operation, state, False)
    return found


def new_migrations() -> list[tuple[object, ProjectState]]:
    """The dashboard's migrations after the previous release, each with the state before it."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    found = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        if app == "dashboard" and name > PREVIOUS_RELEASE:
            found.append((migration, loader.project_state((app, name), at_end=False)))
    return found


def test_every_migration_after_the_previous_release_keeps_the_big_tables_online():
    checked = new_migrations()
    assert len(checked) >= 7  # 0016 to 0022 at least
    assert [p for migration, state in checked for p in problems(migration, state)] == []


# The lint itself: each rule catches what it is for.


def _migration(*operations, atomic: bool = False):
    migration = migrations.Migration("9999_example", "dashboard")
    migration.operations = list(operations)
    migration.atomic = atomic
    return migration


@pytest.fixture(scope="module")
def head() -> ProjectState:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state()


def _found(head: ProjectState, *operations, atomic: bool = False) -> list[str]:
    return problems(_migration(*operations, atomic=atomic), head.clone())


INDEX = models.Index(fields=["status_code"], name="sync_example")
ITEM_INDEX = models.Index(fields=["status"], name="push_item_example")


def raw_update(apps, schema_editor):
    apps.get_model("dashboard", "Sync").objects.update(status_text="")


@online.holds_no_long_locks
def batched_update(apps, schema_editor):
    """(Stands for a function that updates in batches.)"""


@pytest.mark.parametrize(
    ("operations", "atomic", "expected"),
    [
        ([migrations.AddIndex("sync", INDEX)], False, "use online.AddIndexConcurrently"),
        ([migrations.RemoveIndex("sync", "sync_time")], False, "RemoveIndexConcurrently"),
        ([online.AddIndexConcurrently("sync", INDEX)], True, "must run outside a transaction"),
        (
            [online.InTransaction([online.AddIndexConcurrently("pushitem", ITEM_INDEX)])],
            False,
            "must run outside a transaction",
        ),
        (
            [
                migrations.AddConstraint(
                    "pushitem",
                    models.CheckConstraint(condition=models.Q(status__gte=0), name="x"),
                )
            ],
            False,
            "checks or indexes every row",
        ),
        (
            [
                migrations.AddField(
                    "sync",
                    "owner",
                    models.ForeignKey("dashboard.company", models.CASCADE, null=True),
                )
            ],
            False,
            "use online.AddFieldIndexConcurrently",
        ),
        (
            [migrations.AlterField("sync", "status_text", models.TextField(blank=True))],
            False,
            "changes a big table's column",
        ),
        (
            [migrations.RunSQL("UPDATE dashboard_pushitem SET message = ''")],
            False,
            "use online.UpdateInBatches",
        ),
        (
            [migrations.RunSQL("CREATE INDEX x ON dashboard_transactionstate (status)")],
            False,
            "raw SQL on a big table",
        ),
        ([migrations.RunPython(raw_update)], False, "raw_update may change a big table's rows"),
    ],
)
def test_the_lint_catches(head, operations, atomic, expected):
    found = _found(head, *operations, atomic=atomic)
    assert len(found) == 1 and expected in found[0], found


def test_the_lint_lets_online_changes_through(head):
    assert (
        _found(
            head,
            online.InTransaction(
                [
                    migrations.AddField("sync", "note", models.TextField(blank=True, default="")),
                    migrations.AlterField(  # a help text: no change to the column
                        "sync",
                        "status_text",
                        models.CharField(max_length=200, blank=True, default="", help_text="…"),
                    ),
                ]
            ),
            online.AddIndexConcurrently("sync", INDEX),
            online.RemoveIndexConcurrently("sync", "sync_time"),
            online.AddFieldIndexConcurrently(
                "pushitem",
                "owner",
                models.ForeignKey("dashboard.company", models.CASCADE, null=True),
            ),
            online.DropFieldIndexConcurrently(
                "sync",
                "retry_of",
                models.ForeignKey(
                    "dashboard.sync",
                    models.SET_NULL,
                    null=True,
                    blank=True,
                    db_index=False,
                    related_name="retries",
                ),
            ),
            online.UpdateInBatches("dashboard_sync", "status_text = ''"),
            migrations.RunSQL("UPDATE dashboard_company SET description = ''"),
            migrations.RunPython(batched_update),
        )
        == []
    )
