"""The support roles, what each allows, and the refusal that names the role missing.

Migrations create the groups; `ensure_groups()` restores them (for tests whose
database was flushed). Superusers hold every permission, so they count as
admins without a group.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

VIEWER = "Support viewer"
RUNNER = "Support runner"
LEAD = "Support lead"

# What every page, export and download of the dashboard needs: each role has
# it, so a user in no support group reads nothing (`dashboard.access`).
READ_PERMISSION = "dashboard.view_sync"
# The access audit (sign-ins, exports, downloads, refusals): leads and admins.
AUDIT_PERMISSION = "dashboard.view_accessevent"
# A CSV export above `CSV_EXPORT_MAX_ROWS` syncs.
EXPORT_BEYOND_CAP_PERMISSION = "dashboard.export_beyond_cap"
# Problems: assign, note, link a ticket, ignore, snooze, reopen (runners, leads).
TRIAGE_PERMISSION = "dashboard.triage_problem"
# A problem's playbook and customer message (leads).
PLAYBOOK_PERMISSION = "dashboard.edit_playbook"
# Two problems made one (leads).
MERGE_PERMISSION = "dashboard.merge_problem"
# A saved view shared with the team (runners, leads); every role saves its own.
SHARE_VIEW_PERMISSION = "dashboard.share_savedview"
# Rename, unshare or delete anyone's shared view (leads); its owner always may.
MANAGE_SHARED_VIEWS_PERMISSION = "dashboard.manage_shared_savedview"
# Alert rules and channels, their test sends and the delivery log (leads).
ALERTS_PERMISSION = "alerts.manage_alerts"

VIEW = [
    "view_company",
    "view_sync",
    "view_pushitem",
    "view_configsnapshot",
    "view_webhookevent",
    "view_refreshstate",
    "view_retryrequest",
    "view_bulkretry",
    "view_problem",
    "alerts.view_rule",
    "alerts.view_transition",
]
GROUPS = {
    VIEWER: VIEW,
    RUNNER: [*VIEW, "retry_sync", "triage_problem", "share_savedview"],
    LEAD: [
        *VIEW,
        "retry_sync",
        "bulk_retry",
        "cancel_retry",
        "view_accessevent",
        "export_beyond_cap",
        "triage_problem",
        "edit_playbook",
        "merge_problem",
        "share_savedview",
        "manage_shared_savedview",
        "alerts.manage_alerts",
        "alerts.view_channel",
        "alerts.view_delivery",
    ],
}


class RoleRequired(PermissionDenied):
    """A refusal that names the role that would allow it, so the 403 page can say why.

    Its message is written for the person refused and names a role and an
    action, never a record: the 403 page shows it as it is, with `advice`
    (what they can do without the role) when there is some.
    """

    def __init__(self, role: str, action: str, *, advice: str = "") -> None:
        self.role = role
        self.action = action
        self.advice = advice
        super().__init__(f"You need the {role} role to {action}.")


def permissions(codenames: list[str]) -> list[tuple[str, str]]:
    """(app label, codename) for each name; a bare codename is the dashboard's."""
    return [tuple(name.split(".", 1)) if "." in name else ("dashboard", name) for name in codenames]  # type: ignore[misc]


def ensure_groups() -> dict[str, Group]:
    groups = {}
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in permissions(codenames):
            group.permissions.add(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
        groups[name] = group
    return groups
