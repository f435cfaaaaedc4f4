from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0012_ranking_snapshots"),
    ]

    operations = [
        # On PostgreSQL the rollup's key with its counts (index-only reads);
        # SQLite has no covering indexes and skips it.
        migrations.AddIndex(
            model_name="syncrollup",
            index=models.Index(
                fields=["hour", "status_code", "category"],
                include=["syncs", "items_completed", "items_failed"],
                name="sync_rollup_cover",
            ),
        ),
    ]
