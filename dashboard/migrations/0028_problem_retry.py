# A bulk retry of one problem: each member restricted to the problem's transactions, the syncs
# its request is to name, and the other outstanding items those syncs hold (they go along).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0027_problem_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="bulkmember",
            name="named",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="A problem's retry: the syncs its request was to name in the preview, where each of those transactions last failed.",
            ),
        ),
        migrations.AddField(
            model_name="bulkmember",
            name="transaction_ids",
            field=models.JSONField(
                blank=True,
                help_text="A problem's retry: only these transactions are requested, as the preview froze them (those still outstanding then). Null: every outstanding item of the chain.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="bulkretry",
            name="scope",
            field=models.TextField(
                help_text="The filter, as the history's query string; empty for a problem's retry."
            ),
        ),
        migrations.CreateModel(
            name="BulkAlong",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("items", models.PositiveIntegerField()),
                (
                    "bulk",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="along",
                        to="dashboard.bulkretry",
                    ),
                ),
                (
                    "member",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="along",
                        to="dashboard.bulkmember",
                    ),
                ),
                (
                    "problem",
                    models.ForeignKey(
                        blank=True,
                        help_text="Their problem in the preview; empty: in none.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="dashboard.problem",
                    ),
                ),
                (
                    "sync",
                    models.ForeignKey(
                        help_text="The named sync holding them.",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="dashboard.sync",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "bulk retry items along",
                "indexes": [models.Index(fields=["bulk", "problem"], name="bulk_along_problem")],
            },
        ),
    ]
