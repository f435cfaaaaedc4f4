"""Problems: failures grouped by cause, with their aliases, per-company shares, activity
and playbooks; and the links from the current state, failed syncs and bulk retries to them."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0025_metricsample"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        online.InTransaction(
            [
                migrations.CreateModel(
                    name="ProblemActivity",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("username", models.CharField(blank=True, default="", max_length=150)),
                        (
                            "event",
                            models.CharField(
                                choices=[
                                    ("created", "First seen"),
                                    ("resolved", "Resolved (nothing outstanding)"),
                                    ("regressed", "Regressed (failed again after it was resolved)"),
                                    ("reopened", "Reopened"),
                                    ("ignored", "Ignored"),
                                    ("snoozed", "Snoozed"),
                                    ("woke", "Snooze ended"),
                                    ("assigned", "Assigned"),
                                    ("note", "Note"),
                                    ("ticket", "Ticket link"),
                                    ("playbook", "Playbook edited"),
                                    ("merged", "Merged"),
                                    ("retry", "Retried"),
                                ],
                                max_length=20,
                            ),
                        ),
                        (
                            "text",
                            models.TextField(
                                blank=True, default="", help_text="A note, or what changed."
                            ),
                        ),
                        ("detail", models.JSONField(blank=True, default=dict)),
                    ],
                    options={
                        "verbose_name_plural": "problem activity",
                    },
                ),
                migrations.CreateModel(
                    name="ProblemAlias",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("status_code", models.PositiveSmallIntegerField()),
                        ("data_type", models.CharField(blank=True, default="", max_length=50)),
                        ("fingerprint", models.CharField(max_length=64)),
                        (
                            "example",
                            models.TextField(
                                blank=True,
                                default="",
                                help_text="A full message, to fingerprint again later.",
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "verbose_name_plural": "problem aliases",
                    },
                ),
                migrations.CreateModel(
                    name="ProblemCompany",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("items", models.PositiveIntegerField(default=0)),
                        ("syncs", models.PositiveIntegerField(default=0)),
                        ("first_seen", models.DateTimeField()),
                        ("last_seen", models.DateTimeField()),
                        (
                            "days",
                            models.JSONField(
                                blank=True, default=dict, help_text="{day: items} of the last days."
                            ),
                        ),
                    ],
                ),
                migrations.AddField(
                    model_name="company",
                    name="redirect_url",
                    field=models.CharField(
                        blank=True,
                        default="",
                        help_text="The upstream's `redirect`: the link that lets the customer connect (or reconnect) their accounting software.",
                        max_length=500,
                    ),
                ),
                migrations.AddField(
                    model_name="userpreference",
                    name="problems_seen_at",
                    field=models.DateTimeField(
                        blank=True,
                        help_text="When they last opened the Problems page: what is new or regressed since.",
                        null=True,
                    ),
                ),
                migrations.CreateModel(
                    name="Problem",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("status_code", models.PositiveSmallIntegerField()),
                        ("data_type", models.CharField(blank=True, default="", max_length=50)),
                        (
                            "cause",
                            models.TextField(
                                help_text="The normalised message: the cause, with placeholders."
                            ),
                        ),
                        (
                            "example",
                            models.TextField(
                                blank=True, default="", help_text="One full message of it."
                            ),
                        ),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("regressed", "Regressed"),
                                    ("snoozed", "Snoozed"),
                                    ("ignored", "Ignored"),
                                    ("resolved", "Resolved"),
                                    ("merged", "Merged"),
                                ],
                                default="open",
                                max_length=20,
                            ),
                        ),
                        (
                            "state_changed_at",
                            models.DateTimeField(default=django.utils.timezone.now),
                        ),
                        ("snoozed_until", models.DateTimeField(blank=True, null=True)),
                        (
                            "snooze_until_failures",
                            models.PositiveIntegerField(
                                blank=True,
                                help_text="A snooze ends when its outstanding items reach this many.",
                                null=True,
                            ),
                        ),
                        (
                            "state_before_snooze",
                            models.CharField(blank=True, default="", max_length=20),
                        ),
                        ("ticket_url", models.CharField(blank=True, default="", help_text="An http(s) link.", max_length=500)),
                        ("items_outstanding", models.PositiveIntegerField(default=0)),
                        ("syncs_outstanding", models.PositiveIntegerField(default=0)),
                        ("companies_outstanding", models.PositiveIntegerField(default=0)),
                        (
                            "first_seen",
                            models.DateTimeField(
                                default=django.utils.timezone.now,
                                help_text="Its first failure's start.",
                            ),
                        ),
                        (
                            "last_seen",
                            models.DateTimeField(
                                default=django.utils.timezone.now,
                                help_text="Its latest failure's start.",
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now,
                                help_text="When the mirror found it.",
                            ),
                        ),
                        ("resolved_at", models.DateTimeField(blank=True, null=True)),
                        ("regressed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "trend",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text="{day: outstanding items that failed that day}, UTC days.",
                            ),
                        ),
                        (
                            "platforms",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text="{platform: companies with it outstanding}.",
                            ),
                        ),
                        (
                            "playbook",
                            models.TextField(
                                blank=True,
                                default="",
                                help_text="Remediation steps (Markdown); empty: the code's note.",
                            ),
                        ),
                        (
                            "customer_message",
                            models.TextField(
                                blank=True,
                                default="",
                                help_text="Template for the customer; empty: the default one.",
                            ),
                        ),
                        ("playbook_version", models.PositiveIntegerField(default=0)),
                        (
                            "assignee",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "merged_into",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="merged",
                                to="dashboard.problem",
                            ),
                        ),
                    ],
                    options={
                        "permissions": [
                            (
                                "triage_problem",
                                "Can assign a problem, note it, and change its state",
                            ),
                            ("edit_playbook", "Can edit a problem's playbook and customer message"),
                            ("merge_problem", "Can merge two problems"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="PlaybookVersion",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("version", models.PositiveIntegerField()),
                        ("playbook", models.TextField(blank=True, default="")),
                        ("customer_message", models.TextField(blank=True, default="")),
                        ("edited_by", models.CharField(max_length=150)),
                        ("edited_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "problem",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="playbooks",
                                to="dashboard.problem",
                            ),
                        ),
                    ],
                ),
                migrations.AddField(
                    model_name="bulkretry",
                    name="problem",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="Made from a problem's page: the problem whose outstanding items it retries.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="bulk_retries",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddField(
                    model_name="sync",
                    name="problem",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Mirror: for a failed sync without items, the problem its error belongs to.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddField(
                    model_name="transactionstate",
                    name="problem",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="While outstanding: the problem of the push that left it unpushed.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddField(
                    model_name="problemactivity",
                    name="problem",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="activity",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddField(
                    model_name="problemactivity",
                    name="user",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AddField(
                    model_name="problemalias",
                    name="problem",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="aliases",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddField(
                    model_name="problemcompany",
                    name="company",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="dashboard.company",
                    ),
                ),
                migrations.AddField(
                    model_name="problemcompany",
                    name="problem",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="companies",
                        to="dashboard.problem",
                    ),
                ),
                migrations.AddIndex(
                    model_name="problem",
                    index=models.Index(
                        fields=["state", "-companies_outstanding", "-items_outstanding", "id"],
                        name="problem_impact",
                    ),
                ),
                migrations.AddIndex(
                    model_name="problem",
                    index=models.Index(
                        fields=["-companies_outstanding", "-items_outstanding", "id"],
                        name="problem_impact_all",
                    ),
                ),
                migrations.AddIndex(
                    model_name="problem",
                    index=models.Index(fields=["-last_seen", "id"], name="problem_last_seen"),
                ),
                migrations.AddIndex(
                    model_name="problem",
                    index=models.Index(fields=["status_code"], name="problem_code"),
                ),
                migrations.AddConstraint(
                    model_name="playbookversion",
                    constraint=models.UniqueConstraint(
                        fields=("problem", "version"), name="playbook_version_once"
                    ),
                ),
                migrations.AddIndex(
                    model_name="problemactivity",
                    index=models.Index(
                        fields=["problem", "-at", "-id"], name="problem_activity_time"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="problemalias",
                    constraint=models.UniqueConstraint(
                        fields=("status_code", "data_type", "fingerprint"), name="problem_alias_key"
                    ),
                ),
                migrations.AddIndex(
                    model_name="problemcompany",
                    index=models.Index(
                        fields=["problem", "-items", "id"], name="problem_company_items"
                    ),
                ),
                migrations.AddIndex(
                    model_name="problemcompany",
                    index=models.Index(fields=["company"], name="problem_company_company"),
                ),
                migrations.AddConstraint(
                    model_name="problemcompany",
                    constraint=models.UniqueConstraint(
                        fields=("problem", "company"), name="problem_company_key"
                    ),
                ),
            ]
        ),
        online.AddIndexConcurrently(
            model_name="sync",
            index=models.Index(
                condition=models.Q(("problem__isnull", False)),
                fields=["problem", "-sync_utc"],
                name="sync_problem_time",
            ),
        ),
        online.AddIndexConcurrently(
            model_name="transactionstate",
            index=models.Index(
                condition=models.Q(("outstanding", True)),
                fields=["problem", "-last_sync_utc"],
                name="transaction_state_problem",
            ),
        ),
    ]
