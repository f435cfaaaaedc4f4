"""A problem's syncs (the tips of its outstanding items), and every outstanding item newest
first (the item search by message): two partial indexes of the current state, built
concurrently."""

from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0028_problem_retry"),
    ]

    operations = [
        online.AddIndexConcurrently(
            model_name="transactionstate",
            index=models.Index(
                condition=models.Q(("outstanding", True)),
                fields=["problem", "last_sync"],
                include=["last_sync_utc"],
                name="transaction_state_problem_tip",
            ),
        ),
        online.AddIndexConcurrently(
            model_name="transactionstate",
            index=models.Index(
                condition=models.Q(("outstanding", True)),
                fields=["-last_sync_utc", "-id"],
                name="transaction_state_recent",
            ),
        ),
    ]
