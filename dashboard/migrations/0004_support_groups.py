"""The support roles as groups: who may read, who may retry.

- Support viewer: reads every page.
- Support runner: reads, and retries the failed items of a sync.
Staff admins are Django staff users (and superusers) and manage the groups.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [
    "view_company",
    "view_sync",
    "view_pushitem",
    "view_configsnapshot",
    "view_webhookevent",
    "view_refreshstate",
]
GROUPS = {
    "Support viewer": VIEW,
    "Support runner": [*VIEW, "retry_sync"],
}


def create(apps, schema_editor):
    # Permissions are normally made after migrations; make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label="dashboard", codename__in=codenames
            )
        )


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_ui"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create, remove)]
