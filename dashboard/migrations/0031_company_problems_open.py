"""Each company's open problems, kept by the problems' upkeep: the Problems page counts
the companies affected from an index of them instead of probing every company's
shares. Counted here for an existing estate, a batch of companies at a time."""

from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0030_health_signals"),
    ]

    operations = [
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="company",
                    name="problems_open",
                    field=models.PositiveIntegerField(
                        default=0,
                        help_text="Mirror: open or regressed problems with an outstanding "
                        "share of this company.",
                    ),
                ),
            ]
        ),
        online.UpdateInBatches(
            "dashboard_company",
            "problems_open = (SELECT count(*) FROM dashboard_problemcompany AS pc "
            "JOIN dashboard_problem AS p ON p.id = pc.problem_id "
            "WHERE pc.company_id = dashboard_company.id AND p.state IN ('open', 'regressed'))",
            batch_size=1000,
            fills_new_columns=True,
        ),
        online.AddIndexConcurrently(
            model_name="company",
            index=models.Index(
                condition=models.Q(("problems_open__gt", 0)),
                fields=["platform_name"],
                name="company_problems_open",
            ),
        ),
    ]
