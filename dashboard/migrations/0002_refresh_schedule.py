"""Beat's reconciliation, every ten minutes, as a row admins can change.

It lives in django-celery-beat's tables (Django admin → Periodic tasks), not in
CELERY_BEAT_SCHEDULE, so that beat never overwrites an admin's change.
"""

from django.db import migrations

NAME = "Reconcile the mirror with the upstream"


def create(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    if task_model.objects.filter(task="dashboard.reconcile").exists():
        return
    interval, _ = interval_model.objects.get_or_create(every=10, period="minutes")
    task_model.objects.create(
        name=NAME,
        task="dashboard.reconcile",
        interval=interval,
        enabled=True,
        description="Re-reads every company's sync list; webhooks are the primary signal.",
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_mirror"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
