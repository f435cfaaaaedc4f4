"""Bulk retry: the previewed syncs frozen, confirmed, fanned out, cancelled and reported.

Opening the preview freezes the filter's candidates, read in the user's time
zone, as the members of a draft (`draft`); the person leaves syncs out and
confirms; the worker makes one retry request per member still included and
never reads the filter again (`run`), so what is retried is exactly what was
shown, whatever arrived, changed or was resolved in between (a member with
nothing left to retry is skipped, and says why). The report sums the item
outcomes of its requests (`report`). A problem's retry (`problem`) freezes
the problem's outstanding items instead of a filter's syncs.
"""

from .draft import (
    DRAFT_LIFETIME,
    BulkRefused,
    CountMismatch,
    Group,
    Totals,
    candidates,
    choose,
    confirm,
    group_members,
    groups,
    kept_totals,
    open_draft,
    parse_group_key,
    samples,
    sweep_drafts,
)
from .problem import (
    Along,
    AlongGroup,
    along,
    describe,
    named_count,
    open_problem_draft,
    retries_of,
    under_way,
)
from .report import (
    RUNNING_LONG,
    MemberRow,
    Report,
    RunningLong,
    is_finished,
    member_rows,
    report,
    running_long,
)
from .run import (
    CANCELLED_REASON,
    Cancelled,
    can_cancel,
    cancel,
    fan_out,
    skip_unclaimed,
    stalled_fan_outs,
)

__all__ = [
    "CANCELLED_REASON",
    "DRAFT_LIFETIME",
    "RUNNING_LONG",
    "Along",
    "AlongGroup",
    "BulkRefused",
    "Cancelled",
    "CountMismatch",
    "Group",
    "MemberRow",
    "Report",
    "RunningLong",
    "Totals",
    "along",
    "can_cancel",
    "cancel",
    "candidates",
    "choose",
    "confirm",
    "describe",
    "fan_out",
    "group_members",
    "groups",
    "is_finished",
    "kept_totals",
    "member_rows",
    "named_count",
    "open_draft",
    "open_problem_draft",
    "parse_group_key",
    "report",
    "retries_of",
    "running_long",
    "samples",
    "skip_unclaimed",
    "stalled_fan_outs",
    "sweep_drafts",
    "under_way",
]
