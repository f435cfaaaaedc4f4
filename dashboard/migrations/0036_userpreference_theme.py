"""Each user's choice of colours: light, dark, or as their system says (the default)."""

from django.db import migrations, models

from dashboard.db import online


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("dashboard", "0035_problem_companies_version"),
    ]

    operations = [
        # A small table, and a constant default: PostgreSQL adds the column without a rewrite.
        online.InTransaction(
            [
                migrations.AddField(
                    model_name="userpreference",
                    name="theme",
                    field=models.CharField(
                        choices=[("system", "System"), ("light", "Light"), ("dark", "Dark")],
                        db_default="system",
                        default="system",
                        max_length=10,
                    ),
                ),
            ]
        ),
    ]
