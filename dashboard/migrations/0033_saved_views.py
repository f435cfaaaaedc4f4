"""Saved views: a page's filters under a name, personal or shared. Every support role saves
its own; runners and leads share them with the team; leads also rename, unshare or delete
anyone's shared view."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

from dashboard.db import online

GRANTS = {
    "Support runner": ["share_savedview"],
    "Support lead": ["share_savedview", "manage_shared_savedview"],
}


@online.holds_no_long_locks
def grant(apps, schema_editor):
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
def revoke(apps, schema_editor):
    permission_model = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *permission_model.objects.filter(
                content_type__app_label="dashboard",
                codename__in=["share_savedview", "manage_shared_savedview"],
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0032_company_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SavedView",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "page",
                    models.CharField(
                        choices=[
                            ("summary", "Dashboard"),
                            ("history", "History"),
                            ("problems", "Problems"),
                        ],
                        max_length=20,
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                (
                    "query",
                    models.CharField(
                        help_text="The page's filters as a query string: only its own parameters, in a fixed order, never a page cursor.",
                        max_length=2000,
                    ),
                ),
                (
                    "shared",
                    models.BooleanField(
                        default=False, help_text="Listed for everyone with a role."
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "owner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="saved_views",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "permissions": [
                    ("share_savedview", "Can share a saved view with the team"),
                    (
                        "manage_shared_savedview",
                        "Can rename, unshare or delete anyone's shared view",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="DefaultView",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "page",
                    models.CharField(
                        choices=[
                            ("summary", "Dashboard"),
                            ("history", "History"),
                            ("problems", "Problems"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="default_views",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "view",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="defaults",
                        to="dashboard.savedview",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="savedview",
            index=models.Index(
                condition=models.Q(("shared", True)),
                fields=["page", "name"],
                name="saved_view_shared",
            ),
        ),
        migrations.AddConstraint(
            model_name="savedview",
            constraint=models.UniqueConstraint(
                fields=("owner", "page", "name"), name="saved_view_name"
            ),
        ),
        migrations.AddConstraint(
            model_name="defaultview",
            constraint=models.UniqueConstraint(
                fields=("user", "page"), name="default_view_per_page"
            ),
        ),
        migrations.RunPython(grant, revoke),
    ]
