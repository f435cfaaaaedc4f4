"""Roles for alerts: every support role reads the rules and the alerts they raised;
leads manage rules, channels and mutes and read the delivery log."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Support viewer": ["view_rule", "view_transition"],
    "Support runner": ["view_rule", "view_transition"],
    "Support lead": [
        "view_rule",
        "view_transition",
        "view_channel",
        "view_delivery",
        "manage_alerts",
    ],
}


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
            *permission_model.objects.filter(content_type__app_label="alerts", codename__in=codenames)
        )


def remove(apps, schema_editor):
    permission_model = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*permission_model.objects.filter(content_type__app_label="alerts"))


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_alerts"), ("dashboard", "0004_support_groups")]

    operations = [migrations.RunPython(create, remove)]
