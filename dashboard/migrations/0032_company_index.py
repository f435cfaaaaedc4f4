"""The companies index: each company's last sync and last success on its own row (kept
by ingest with the failing streak), counted here for an existing estate a batch of
companies at a time, and an index for each of the index's sorts (the one on the name
alone gives way to the name and ID); a company's retry requests newest first, for its
timeline."""

from django.db import migrations, models

from dashboard.db import online

SORTS = {
    "name": "name",
    "platform": "platform_name",
    "connection": "connection_status",
    "outstanding": "items_outstanding",
    "streak": "failing_streak",
    "last_sync": "last_sync_at",
    "last_success": "last_success_at",
    "problems": "problems_open",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0031_company_problems_open"),
    ]

    operations = [
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="company",
                    name="last_success_at",
                    field=models.DateTimeField(
                        blank=True,
                        null=True,
                        help_text="Mirror: the start of its newest successful sync (a retry's "
                        "included), kept by ingest with the failing streak; empty: none yet.",
                    ),
                ),
                migrations.AddField(
                    model_name="company",
                    name="last_sync_at",
                    field=models.DateTimeField(
                        blank=True,
                        null=True,
                        help_text="Mirror: the start (syncUtc) of its newest sync, kept by "
                        "ingest with the failing streak; empty: no sync yet.",
                    ),
                ),
            ]
        ),
        # Both read sync_company_time (company, -sync_utc); category 1 is a success.
        online.UpdateInBatches(
            "dashboard_company",
            "last_sync_at = (SELECT max(s.sync_utc) FROM dashboard_sync AS s "
            "WHERE s.company_id = dashboard_company.id), "
            "last_success_at = (SELECT max(s.sync_utc) FROM dashboard_sync AS s "
            "WHERE s.company_id = dashboard_company.id AND s.category = 1)",
            batch_size=500,
            fills_new_columns=True,
        ),
        *(
            online.AddIndexConcurrently(
                model_name="company",
                index=models.Index(fields=[column, "id"], name=f"company_by_{key}"),
            )
            for key, column in SORTS.items()
        ),
        # company_by_name (name, id) serves every read this one did, and the sort's ties.
        online.RemoveIndexConcurrently(model_name="company", name="dashboard_c_name_e237b2_idx"),
        online.AddIndexConcurrently(
            model_name="retryrequest",
            index=models.Index(fields=["company", "-created_at", "-id"], name="retry_company_time"),
        ),
    ]
