"""A version of each problem's set of companies, bumped by the problems' upkeep when a
company gains or loses its share: the Problems page's headline keeps each problem's
set under it and unions the sets of a selection instead of probing every company."""

from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0034_live_updates"),
    ]

    operations = [
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="problem",
                    name="companies_version",
                    field=models.PositiveIntegerField(
                        default=0,
                        help_text="Counts the times a company gained or lost its share: the "
                        "key under which the list's headline keeps the problem's set of "
                        "companies.",
                    ),
                ),
            ]
        ),
    ]
