"""Retry requests that never get stuck: a lease a worker holds, the moment the
POST was about to go out, and a cancel for leads before it has.

Requests running at the upgrade keep the old five-minute lease from their
start, so the follow-up picks them up if their worker is gone.
"""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

from dashboard.db import online

OLD_LEASE = timedelta(minutes=5)


@online.holds_no_long_locks  # permissions, and the few retry requests running
def grant_and_lease(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    lead, _ = group_model.objects.get_or_create(name="Support lead")
    lead.permissions.add(
        *permission_model.objects.filter(
            content_type__app_label="dashboard", codename="cancel_retry"
        )
    )
    request_model = apps.get_model("dashboard", "RetryRequest")
    for request in request_model.objects.filter(state="running", lease_until__isnull=True):
        request.lease_until = (request.started_at or request.created_at) + OLD_LEASE
        request.save(update_fields=["lease_until"])


def revoke(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    lead = group_model.objects.filter(name="Support lead").first()
    if lead is not None:
        lead.permissions.remove(
            *permission_model.objects.filter(
                content_type__app_label="dashboard", codename="cancel_retry"
            )
        )


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0016_current_state'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='retryrequest',
            options={'permissions': [('cancel_retry', 'Can cancel a retry request before it is sent')]},
        ),
        migrations.AddField(
            model_name='retryrequest',
            name='cancelled_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='retryrequest',
            name='lease_until',
            field=models.DateTimeField(blank=True, help_text="A running request's worker holds it until then; a queued one waiting to try again is due by then. Past it, the follow-up picks the request up again.", null=True),
        ),
        migrations.AddField(
            model_name='retryrequest',
            name='posted_at',
            field=models.DateTimeField(blank=True, help_text='When the first POST to the upstream was about to be sent: later attempts look upstream for the sync it may have started, and no one can cancel it any more.', null=True),
        ),
        migrations.AlterField(
            model_name='retryrequest',
            name='state',
            field=models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('submitted', 'Submitted (new sync running)'), ('completed', 'Completed'), ('failed', 'Failed'), ('denied', 'Denied'), ('skipped', 'Skipped'), ('cancelled', 'Cancelled')], default='queued', max_length=20),
        ),
        migrations.RunPython(grant_and_lease, revoke),
    ]
