"""Roles for problems: every support role reads them; runners and leads triage them
(assign, note, link a ticket, ignore, snooze, reopen); leads also edit playbooks and merge."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from dashboard.db import online

GRANTS = {
    "Support viewer": ["view_problem"],
    "Support runner": ["view_problem", "triage_problem"],
    "Support lead": ["view_problem", "triage_problem", "edit_playbook", "merge_problem"],
}


@online.holds_no_long_locks
def create(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label="dashboard", codename__in=codenames
            )
        )


@online.holds_no_long_locks
def remove(apps, schema_editor):
    permission_model = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *permission_model.objects.filter(
                content_type__app_label="dashboard",
                codename__in=["view_problem", "triage_problem", "edit_playbook", "merge_problem"],
            )
        )


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0026_problems")]

    operations = [migrations.RunPython(create, remove)]
