"""The mirror's own health (one row) and the syncs that polling found without their
webhook: two new tables, nothing of the big ones touched."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0029_problem_syncs_item_search"),
    ]

    operations = [
        migrations.CreateModel(
            name="SystemHealth",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "watching_since",
                    models.DateTimeField(
                        default=django.utils.timezone.now,
                        help_text="When a process first recorded a signal.",
                    ),
                ),
                (
                    "last_refresh_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="The latest successful company refresh (to the minute).",
                        null=True,
                    ),
                ),
                (
                    "upstream_trouble_since",
                    models.DateTimeField(
                        blank=True,
                        help_text="Unreachable or rate limiting us since; empty: fine.",
                        null=True,
                    ),
                ),
                (
                    "upstream_trouble_kind",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("unreachable", "Unreachable"),
                            ("rate_limited", "Rate limiting us"),
                        ],
                        default="",
                        max_length=20,
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "system health",
            },
        ),
        migrations.CreateModel(
            name="WebhookGap",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sync_id", models.UUIDField(unique=True)),
                (
                    "ended_at",
                    models.DateTimeField(help_text="Best-known end: it had not ended before this."),
                ),
                ("found_at", models.DateTimeField(help_text="The poll that found it finished.")),
                ("due_at", models.DateTimeField(help_text="No webhook by then: missed.")),
                (
                    "missed_at",
                    models.DateTimeField(
                        blank=True,
                        help_text="When it was counted missed; empty: not (yet).",
                        null=True,
                    ),
                ),
                (
                    "webhook_at",
                    models.DateTimeField(
                        blank=True, help_text="When its webhook arrived, after all.", null=True
                    ),
                ),
                (
                    "company",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="dashboard.company",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["missed_at"], name="webhook_gap_missed"),
                    models.Index(fields=["company", "missed_at"], name="webhook_gap_company"),
                    models.Index(
                        condition=models.Q(
                            ("missed_at__isnull", True), ("webhook_at__isnull", True)
                        ),
                        fields=["due_at"],
                        name="webhook_gap_due",
                    ),
                ],
            },
        ),
    ]
