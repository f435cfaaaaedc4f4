"""The support roles. Migrations create them; `ensure_groups()` restores them.

Used by `manage.py demo_login` and by tests whose database was flushed.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

VIEW = [
    "view_company",
    "view_sync",
    "view_pushitem",
    "view_configsnapshot",
    "view_webhookevent",
    "view_refreshstate",
    "view_retryrequest",
    "view_bulkretry",
]
GROUPS = {
    "Support viewer": VIEW,
    "Support runner": [*VIEW, "retry_sync"],
    "Support lead": [*VIEW, "retry_sync", "bulk_retry", "cancel_retry"],
}


def ensure_groups() -> dict[str, Group]:
    groups = {}
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="dashboard", codename__in=codenames)
        )
        groups[name] = group
    return groups
