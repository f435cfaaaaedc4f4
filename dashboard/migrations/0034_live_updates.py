"""What is new since a person's last visit: when each user last opened the dashboard or the
history, and an index of the syncs by when the mirror first saw them (the dashboard counts
the syncs that arrived since)."""

import django.utils.timezone
from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0033_saved_views"),
    ]

    operations = [
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="userpreference",
                    name="syncs_seen_at",
                    field=models.DateTimeField(
                        blank=True,
                        help_text="When they last opened the dashboard or the history: which "
                        "syncs are new since.",
                        null=True,
                    ),
                ),
                migrations.AlterField(
                    model_name="sync",
                    name="first_seen",
                    field=models.DateTimeField(
                        default=django.utils.timezone.now, help_text="Mirror: first fetched."
                    ),
                ),
            ]
        ),
        online.AddIndexConcurrently(
            model_name="sync",
            index=models.Index(fields=["first_seen"], name="sync_first_seen"),
        ),
    ]
