"""Migration operations that keep the big tables online while a deployment upgrades.

The syncs, their push items and the current state grow with every company
(a million syncs and twenty million items in the benchmark's estate), and the
web server and the workers keep using them while `manage.py migrate` runs.
On PostgreSQL a plain `CREATE INDEX` blocks their writers until the index is
built, and anything that takes an ACCESS EXCLUSIVE lock in a migration's
transaction (adding a column, dropping an index or a constraint) blocks their
readers too, until the whole migration commits. So a migration that touches
them, in a migration with `atomic = False`:

- builds and drops indexes concurrently (`AddIndexConcurrently`,
  `RemoveIndexConcurrently`, and for a field's own index
  `AddFieldIndexConcurrently`, `DropFieldIndexConcurrently`);
- groups its other schema changes in `InTransaction`, so they still apply
  all or nothing, and their brief locks end when the group commits;
- changes rows in batches that each commit (`UpdateInBatches`), or in a
  function marked `@holds_no_long_locks` by an author who has made sure.

Elsewhere (SQLite, the embedded default, where one writer holds the whole
file anyway) each operation is the plain one. `tests/db/test_migration_lint.py`
holds every migration after the previous release to these rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.contrib.postgres import operations as postgres
from django.db import NotSupportedError, migrations, transaction
from django.db.migrations.operations.base import Operation

# The tables that grow with the estate (model names, as migrations name them).
BIG_MODELS = frozenset({"sync", "pushitem", "transactionstate"})

F = TypeVar("F", bound=Callable[..., Any])


def holds_no_long_locks(function: F) -> F:
    """Mark a RunPython function whose author vouches that it changes no rows
    of the big tables, or changes them in batches that each commit."""
    function.holds_no_long_locks = True  # type: ignore[attr-defined]
    return function


def _on_postgresql(schema_editor: Any) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _drop_if_invalid(schema_editor: Any, name: str) -> None:
    """A concurrent build that failed leaves an invalid index behind: drop it,
    so the migration can simply be run again."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND NOT i.indisvalid",
            [name],
        )
        invalid = cursor.fetchone() is not None
    if invalid:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


class AddIndexConcurrently(postgres.AddIndexConcurrently):
    """`AddIndex`, built with CREATE INDEX CONCURRENTLY on PostgreSQL."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        self._ensure_not_in_transaction(schema_editor)
        _drop_if_invalid(schema_editor, self.index.name)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrently(postgres.RemoveIndexConcurrently):
    """`RemoveIndex`, dropped with DROP INDEX CONCURRENTLY on PostgreSQL."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return migrations.RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        self._ensure_not_in_transaction(schema_editor)
        _drop_if_invalid(schema_editor, self.name)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


def _create_field_index(schema_editor: Any, model: Any, field: Any) -> None:
    """The index Django makes for an indexed field, under Django's name, built concurrently."""
    _drop_if_invalid(
        schema_editor, schema_editor._create_index_name(model._meta.db_table, [field.column])
    )
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field], concurrently=True))


class AddFieldIndexConcurrently(postgres.NotInTransactionMixin, migrations.AddField):
    """`AddField` of an indexed field (a foreign key): on PostgreSQL the column
    first, then its index concurrently (AddField builds it in the migration's
    transaction, while the new column's lock is held)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        field = model._meta.get_field(self.name)
        if not (field.db_index and not field.unique):
            raise ValueError(f"{self.model_name}.{self.name} has no index of its own to build")
        column_only = copy.copy(field)
        column_only.db_index = False
        schema_editor.add_field(from_state.apps.get_model(app_label, self.model_name), column_only)
        _create_field_index(schema_editor, model, field)
        return None

    def describe(self):
        return f"{super().describe()}, its index built concurrently"


class DropFieldIndexConcurrently(postgres.NotInTransactionMixin, migrations.AlterField):
    """`AlterField` that only turns a field's `db_index` off. On PostgreSQL the
    index is dropped concurrently and nothing else is touched (AlterField would
    also drop and re-add a foreign key, checking every row under the lock)."""

    def _fields(self, app_label, from_state, to_state) -> tuple[Any, Any, Any]:
        before = from_state.apps.get_model(app_label, self.model_name)
        after = to_state.apps.get_model(app_label, self.model_name)
        return before, before._meta.get_field(self.name), after._meta.get_field(self.name)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model, old, new = self._fields(app_label, from_state, to_state)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        unindexed = copy.copy(old)
        unindexed.db_index = False
        if (
            not old.db_index
            or new.db_index
            or schema_editor._field_should_be_altered(unindexed, new)
        ):
            raise ValueError(f"{self.model_name}.{self.name}: this operation only drops an index")
        # The names Django's AlterField would drop: indexes on this column alone,
        # other than the model's declared ones.
        declared = {index.name for index in model._meta.indexes}
        names = schema_editor._constraint_names(
            model, [old.column], index=True, type_="idx", exclude=declared
        )
        for name in names:
            schema_editor.execute(schema_editor._delete_index_sql(model, name, concurrently=True))
        return None

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _on_postgresql(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            _create_field_index(schema_editor, model, model._meta.get_field(self.name))
        return None

    def describe(self):
        return f"Concurrently drop the index of {self.model_name}.{self.name}"


class InTransaction(Operation):
    """Operations applied together in one transaction, inside a migration with
    `atomic = False` (whose concurrent index builds must stay outside one)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, operations: Sequence[Operation]) -> None:
        self.operations = list(operations)

    def deconstruct(self):
        return (self.__class__.__qualname__, [self.operations], {})

    def state_forwards(self, app_label, state):
        for operation in self.operations:
            operation.state_forwards(app_label, state)

    def _states(self, app_label, start) -> list[tuple[Operation, Any, Any]]:
        """Each operation with the states before and after it, rendered before
        any lock is taken (rendering models is slow)."""
        steps = []
        state = start.clone()
        # Rendered once: clones copy the models, and each operation updates them.
        state.apps  # noqa: B018
        for operation in self.operations:
            before = state.clone()
            operation.state_forwards(app_label, state)
            steps.append((operation, before, state.clone()))
        return steps

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        steps = self._states(app_label, from_state)
        with transaction.atomic(using=schema_editor.connection.alias):
            for operation, before, after in steps:
                operation.database_forwards(app_label, schema_editor, before, after)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        steps = self._states(app_label, to_state)
        with transaction.atomic(using=schema_editor.connection.alias):
            for operation, before, after in reversed(steps):
                operation.database_backwards(app_label, schema_editor, after, before)

    def describe(self):
        return "In one transaction: " + "; ".join(op.describe() for op in self.operations)


class UpdateInBatches(Operation):
    """`UPDATE table SET assignments WHERE condition`, a range of `batch_size`
    IDs at a time, each range committed on its own: no row stays locked longer
    than its batch. Run again after an interruption, it starts over, so the
    assignments must give the same result when applied twice.

    Not reversible, unless it only fills columns that the same migration adds
    (`fills_new_columns=True`): going back then drops them, and this step
    has nothing of its own to undo."""

    reduces_to_sql = False

    def __init__(
        self,
        table: str,
        assignments: str,
        condition: str = "TRUE",
        batch_size=5000,
        fills_new_columns: bool = False,
    ):
        self.table = table
        self.assignments = assignments
        self.condition = condition
        self.batch_size = batch_size
        self.fills_new_columns = fills_new_columns

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return self.fills_new_columns

    def deconstruct(self):
        kwargs = {"condition": self.condition, "batch_size": self.batch_size}
        if self.fills_new_columns:
            kwargs["fills_new_columns"] = True
        return (self.__class__.__qualname__, [self.table, self.assignments], kwargs)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # Only reached when reversible: the columns it filled are dropped by the
        # reversal of the operation that added them.
        return None

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        if connection.in_atomic_block and _on_postgresql(schema_editor):
            raise NotSupportedError(
                "UpdateInBatches commits each batch: set atomic = False on the migration."
            )
        table = schema_editor.quote_name(self.table)
        after = 0
        with connection.cursor() as cursor:
            while True:
                cursor.execute(
                    f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > %s "
                    f"ORDER BY id LIMIT %s) AS batch",
                    [after, self.batch_size],
                )
                last = cursor.fetchone()[0]
                if last is None:
                    return
                cursor.execute(
                    f"UPDATE {table} SET {self.assignments} "
                    f"WHERE id > %s AND id <= %s AND ({self.condition})",
                    [after, last],
                )
                after = last

    def describe(self):
        return f"Update {self.table} in batches of {self.batch_size}"
