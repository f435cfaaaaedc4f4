"""Beat polls companies by priority (`dashboard.poll`) instead of reconciling every one.

The reconciliation's row (0002) becomes the poller's: every 30 seconds, it
queues the most overdue companies that polling's share of the request budget
allows (`dashboard.polling`). `dashboard.reconcile` stays, for a full refresh
by hand (`manage.py refresh --all --enqueue`); beat no longer sends it.
"""

from django.db import migrations

from dashboard.db import online

RECONCILE = "Reconcile the mirror with the upstream"
POLL = "Poll companies by priority"
POLL_DESCRIPTION = (
    "Queues the companies whose poll is due, most overdue first, within polling's share of "
    "the request budget (Django admin → Polling schedule); webhooks are the primary signal."
)
RECONCILE_DESCRIPTION = "Re-reads every company's sync list; webhooks are the primary signal."


@online.holds_no_long_locks  # beat's schedule only
def to_poller(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = interval_model.objects.get_or_create(every=30, period="seconds")
    if task_model.objects.filter(task="dashboard.poll").exists():
        task_model.objects.filter(task="dashboard.reconcile").update(enabled=False)
        return
    row = task_model.objects.filter(task="dashboard.reconcile").order_by("pk").first()
    if row is None:
        row = task_model(enabled=True)
    row.name, row.task, row.interval = POLL, "dashboard.poll", interval
    row.description = POLL_DESCRIPTION
    row.save()
    task_model.objects.filter(task="dashboard.reconcile").update(enabled=False)


@online.holds_no_long_locks  # beat's schedule only
def to_reconcile(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = interval_model.objects.get_or_create(every=10, period="minutes")
    if task_model.objects.filter(task="dashboard.reconcile").exists():
        task_model.objects.filter(task="dashboard.poll").delete()
        task_model.objects.filter(task="dashboard.reconcile").update(enabled=True)
        return
    task_model.objects.filter(task="dashboard.poll").update(
        name=RECONCILE,
        task="dashboard.reconcile",
        interval=interval,
        description=RECONCILE_DESCRIPTION,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0037_adaptive_polling"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(to_poller, to_reconcile)]
