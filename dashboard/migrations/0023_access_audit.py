"""The access audit (sign-ins, failed sign-ins, lockouts, sign-outs, CSV exports,
config downloads, permission denials), and what leads may do with it: read
it, and export more syncs than the CSV export's cap.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

from dashboard.db import online

LEAD_PERMISSIONS = ["view_accessevent", "export_beyond_cap"]


@online.holds_no_long_locks  # permissions and groups only
def grant(apps, schema_editor):
    # Permissions are normally made after migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    lead, _ = group_model.objects.get_or_create(name="Support lead")
    lead.permissions.add(
        *permission_model.objects.filter(
            content_type__app_label="dashboard", codename__in=LEAD_PERMISSIONS
        )
    )


def revoke(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    lead = group_model.objects.filter(name="Support lead").first()
    if lead is not None:
        lead.permissions.remove(
            *permission_model.objects.filter(
                content_type__app_label="dashboard", codename__in=LEAD_PERMISSIONS
            )
        )


class Migration(migrations.Migration):

    dependencies = [
        ('dashboard', '0022_redundant_fk_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='sync',
            options={'permissions': [('retry_sync', 'Can retry the failed items of a sync'), ('bulk_retry', 'Can retry the failed items of many syncs at once'), ('export_beyond_cap', "Can export more syncs than the CSV export's row cap")]},
        ),
        migrations.CreateModel(
            name='AccessEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('action', models.CharField(choices=[('login', 'Signed in'), ('login_failed', 'Failed sign-in'), ('lockout', 'Locked out'), ('logout', 'Signed out'), ('csv_export', 'CSV export'), ('config_download', 'Config download'), ('permission_denied', 'Permission denied')], max_length=30)),
                ('username', models.CharField(blank=True, default='', help_text='As typed, for a failed sign-in.', max_length=150)),
                ('client_ip', models.GenericIPAddressField(blank=True, help_text='Read through TRUSTED_PROXIES.', null=True, verbose_name='client address')),
                ('path', models.CharField(blank=True, default='', max_length=500)),
                ('company_id', models.UUIDField(blank=True, null=True)),
                ('company_name', models.CharField(blank=True, default='', help_text="The company's name at the time.", max_length=500)),
                ('detail', models.JSONField(blank=True, default=dict, help_text="What else the event says: an export's filter and rows, the role lacking.")),
                ('user', models.ForeignKey(blank=True, help_text='Empty for a failed sign-in, or once the account is deleted.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['-at', '-id'], name='access_time'), models.Index(fields=['action', '-at', '-id'], name='access_action_time'), models.Index(fields=['username', '-at', '-id'], name='access_user_time')],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
