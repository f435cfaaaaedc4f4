"""Roles for retrying: runners retry one sync; leads may also retry in bulk.

Every support role may read the audit log of retry requests.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

AUDIT = ["view_retryrequest", "view_bulkretry"]
VIEW = [
    "view_company",
    "view_sync",
    "view_pushitem",
    "view_configsnapshot",
    "view_webhookevent",
    "view_refreshstate",
]


def create(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")

    def perms(codenames):
        return permission_model.objects.filter(
            content_type__app_label="dashboard", codename__in=codenames
        )

    for name in ("Support viewer", "Support runner"):
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.add(*perms(AUDIT))
    lead, _ = group_model.objects.get_or_create(name="Support lead")
    lead.permissions.add(*perms([*VIEW, *AUDIT, "retry_sync", "bulk_retry"]))


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Support lead").delete()


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0005_retry_requests")]

    operations = [migrations.RunPython(create, remove)]
