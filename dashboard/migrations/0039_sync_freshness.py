"""Freshness: each sync's latest change, with when the mirror learned of it, the best-known
time it happened upstream and how it was learned; a partial index of the changes counted
(first reads apart), which the dashboard's and the metrics' lag over the last hour read."""

import importlib

from django.db import migrations, models

from dashboard.db import online

# SQLite adds a column with a default by remaking the table, and the rollup's
# triggers on the syncs table go with it.
restore_sqlite_triggers = importlib.import_module(
    "dashboard.migrations.0014_sync_platform"
).restore_sqlite_triggers


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0038_poll_schedule"),
    ]

    operations = [
        # Nullable columns, and a constant default: PostgreSQL adds them without a rewrite.
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="sync",
                    name="learned_at",
                    field=models.DateTimeField(
                        blank=True,
                        help_text="Mirror: when it learned of the sync's latest change (new, "
                        "or a new status).",
                        null=True,
                    ),
                ),
                migrations.AddField(
                    model_name="sync",
                    name="changed_at",
                    field=models.DateTimeField(
                        blank=True,
                        help_text="Upstream: the best-known time of that change: the webhook's "
                        "time; else the sync's start, or when the mirror last wrote it before, "
                        "the earliest it can be.",
                        null=True,
                    ),
                ),
                migrations.AddField(
                    model_name="sync",
                    name="learned_by",
                    field=models.PositiveSmallIntegerField(
                        choices=[(0, "backfill"), (1, "poll"), (2, "webhook")],
                        db_default=0,
                        default=0,
                        help_text="Mirror: how it learned of that change (a first read counts "
                        "no lag).",
                    ),
                ),
            ]
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
        online.AddIndexConcurrently(
            model_name="sync",
            index=models.Index(
                condition=models.Q(("learned_by__gt", 0)),
                fields=["learned_at"],
                include=["changed_at", "learned_by"],
                name="sync_learned",
            ),
        ),
    ]
