"""What every status means, in one place: sync status codes and their categories,
push item statuses, retry states, and the client-friendly note for each code.

Templates and CSS speak in the names defined here (`Category.FAILED`,
`.cat-failed`), never in the integers stored in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from django.db import models


class Category(models.IntegerChoices):
    """A sync's outcome as the pages group it. Stored as the integer; shown by name."""

    IN_PROGRESS = 0, "In progress"
    SUCCESS = 1, "Success"
    FAILED = 2, "Failed"

    @property
    def key(self) -> str:
        """The name in URLs (`?category=in_progress`) and in summaries."""
        return _CATEGORY_KEYS[self]

    @property
    def css(self) -> str:
        """The name in class names (`cat-in-progress`)."""
        return _CATEGORY_KEYS[self].replace("_", "-")


_CATEGORY_KEYS = {
    Category.IN_PROGRESS: "in_progress",
    Category.SUCCESS: "success",
    Category.FAILED: "failed",
}
# `?category=` values and the category each names.
CATEGORY_BY_KEY = {category.key: category for category in Category}
# Each category's class name, by stored integer (the history's rows are plain values).
CATEGORY_CSS = {int(category): category.css for category in Category}


class Code(IntEnum):
    """The seed's sync status codes, by name."""

    IN_PROGRESS = 1000
    LONG_RUNNING = 1010
    SUCCESS = 2000
    SUCCESS_NO_DATA = 2040
    CONFIGURATION_ERROR = 4000
    COMPANY_DELETED = 4040
    COMPANY_DEAUTHORIZED = 4220
    BILLING_EXPIRED = 4260
    SERVER_ERROR = 5000
    DUPLICATION_PROTECTION = 5080
    DATA_PROCESSING_ERROR = 5120
    DATA_PUSH_ERROR = 5130


# Each code's text and category, in the seed's order.
_STATUS_CODES: dict[Code, tuple[str, Category]] = {
    Code.IN_PROGRESS: ("In progress", Category.IN_PROGRESS),
    Code.LONG_RUNNING: ("In progress (long running)", Category.IN_PROGRESS),
    Code.SUCCESS: ("Success (data pushed)", Category.SUCCESS),
    Code.SUCCESS_NO_DATA: ("Success (no data pushed)", Category.SUCCESS),
    Code.CONFIGURATION_ERROR: ("Configuration error", Category.FAILED),
    Code.COMPANY_DELETED: ("Company deleted", Category.FAILED),
    Code.COMPANY_DEAUTHORIZED: ("Company de-authorized", Category.FAILED),
    Code.BILLING_EXPIRED: ("Accounting platform billing expiry", Category.FAILED),
    Code.SERVER_ERROR: ("Generic server error", Category.FAILED),
    Code.DUPLICATION_PROTECTION: ("Duplication protection", Category.FAILED),
    Code.DATA_PROCESSING_ERROR: ("Data processing error", Category.FAILED),
    Code.DATA_PUSH_ERROR: ("Data push error", Category.FAILED),
}
# Keyed by plain integers, as the database and the forms hold them.
STATUS_CODES: dict[int, tuple[str, Category]] = {int(c): v for c, v in _STATUS_CODES.items()}
IN_PROGRESS_CODES = frozenset(
    code for code, (_, category) in STATUS_CODES.items() if category == Category.IN_PROGRESS
)
# The first code of the failures that the upstream reports for a whole sync
# (4xxx and 5xxx); below it, a failed sync failed because of its items.
FIRST_SYNC_FAILURE_CODE = Code.CONFIGURATION_ERROR


def code_category(code: int) -> Category:
    """Category of an upstream status code; an unknown code counts as failed."""
    entry = STATUS_CODES.get(code)
    return entry[1] if entry else Category.FAILED


def status_label(code: int, upstream_text: str = "") -> str:
    """A code's text: ours for a known code, else the upstream's, else "Unknown"."""
    entry = STATUS_CODES.get(code)
    return entry[0] if entry else (upstream_text or "Unknown")


class Learned(models.IntegerChoices):
    """How the mirror learned of a sync's latest change: what its lag measures."""

    # A company's first read brings its history, not news: no lag is counted.
    BACKFILL = 0, "backfill"
    # A read the mirror made itself: a company's poll, or a sync read after a retry.
    POLL = 1, "poll"
    WEBHOOK = 2, "webhook"


class ItemStatus(models.IntegerChoices):
    """One status set for the API's transaction statuses and the webhook's."""

    UNKNOWN = 0, "Unknown"
    PENDING = 1, "Pending"
    VALIDATION_ERROR = 2, "ValidationError"
    COMPLETED = 3, "Completed"
    PUSH_ERROR = 4, "PushError"
    FAILED = 5, "Failed"

    @property
    def css(self) -> str:
        """The name in class names (`item-push-error`)."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, value: object) -> ItemStatus:
        """The member with this label (the API's or the webhook's word); Unknown otherwise."""
        if isinstance(value, str):
            return _ITEM_STATUS_BY_LABEL.get(value, cls.UNKNOWN)
        return cls.UNKNOWN


# One look-up a row: ingest parses every item's status.
_ITEM_STATUS_BY_LABEL = {member.label: member for member in ItemStatus}

FAILED_ITEM_STATUSES = (ItemStatus.VALIDATION_ERROR, ItemStatus.PUSH_ERROR, ItemStatus.FAILED)
OPEN_ITEM_STATUSES = (ItemStatus.UNKNOWN, ItemStatus.PENDING)


class ItemFilter(models.TextChoices):
    """The Push items tab's one status filter: the three failed statuses are one choice."""

    FAILED = "failed", "Failed"
    COMPLETED = "completed", "Completed"
    PENDING = "pending", "Pending"
    UNKNOWN = "unknown", "Unknown"

    @property
    def statuses(self) -> tuple[ItemStatus, ...]:
        return _FILTER_STATUSES[self]

    @classmethod
    def containing(cls, status: int) -> str:
        """The choice that shows items of this status (the number itself if none does)."""
        return next((c.value for c in cls if status in _FILTER_STATUSES[c]), str(status))


_FILTER_STATUSES = {
    ItemFilter.FAILED: FAILED_ITEM_STATUSES,
    ItemFilter.COMPLETED: (ItemStatus.COMPLETED,),
    ItemFilter.PENDING: (ItemStatus.PENDING,),
    ItemFilter.UNKNOWN: (ItemStatus.UNKNOWN,),
}


class RetryState(models.TextChoices):
    """Where one retry request stands."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUBMITTED = "submitted", "Submitted (new sync running)"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    DENIED = "denied", "Denied"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RETRY_STATES = (RetryState.QUEUED, RetryState.RUNNING, RetryState.SUBMITTED)
# A worker may take a request in one of these; a lead may cancel it there too,
# as long as its POST has not been sent.
CLAIMABLE_RETRY_STATES = (RetryState.QUEUED, RetryState.RUNNING)


class BulkState(models.TextChoices):
    """Where a bulk retry stands: a draft until confirmed; its requests made once fanned out."""

    DRAFT = "draft", "Draft (previewed, not confirmed)"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Making its requests"
    FANNED_OUT = "fanned_out", "Requests made"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    DENIED = "denied", "Denied"


class ProblemState(models.TextChoices):
    """Where a problem (a group of outstanding failures with one cause) stands.

    Open, resolved and regressed follow the mirror: a group resolves by
    itself when nothing in it is outstanding, and regresses when it fails
    again after that. Ignored and snoozed are a person's decision; a snooze
    ends at its date or after its number of further failures.
    """

    OPEN = "open", "Open"
    REGRESSED = "regressed", "Regressed"
    SNOOZED = "snoozed", "Snoozed"
    IGNORED = "ignored", "Ignored"
    RESOLVED = "resolved", "Resolved"
    MERGED = "merged", "Merged"


# A problem in one of these asks for someone's attention.
ACTIVE_PROBLEM_STATES = (ProblemState.OPEN, ProblemState.REGRESSED)


class ProblemEvent(models.TextChoices):
    """What a problem's activity records: every change, with who (or the mirror) and when."""

    CREATED = "created", "First seen"
    RESOLVED = "resolved", "Resolved (nothing outstanding)"
    REGRESSED = "regressed", "Regressed (failed again after it was resolved)"
    REOPENED = "reopened", "Reopened"
    IGNORED = "ignored", "Ignored"
    SNOOZED = "snoozed", "Snoozed"
    WOKE = "woke", "Snooze ended"
    ASSIGNED = "assigned", "Assigned"
    NOTE = "note", "Note"
    TICKET = "ticket", "Ticket link"
    PLAYBOOK = "playbook", "Playbook edited"
    MERGED = "merged", "Merged"
    RETRY = "retry", "Retried"


class PurgeReason(models.TextChoices):
    """Why a company's mirrored data was erased (`manage.py purge_company`)."""

    OFFBOARDING = "offboarding", "Offboarding"
    ERASURE_REQUEST = "erasure_request", "Erasure request"


# A bulk retry in one of these makes no more requests.
SETTLED_BULK_STATES = (
    BulkState.FANNED_OUT,
    BulkState.CANCELLED,
    BulkState.FAILED,
    BulkState.DENIED,
)
# A confirmed bulk retry in one of these may still be cancelled: it has
# members to request, or requests that no worker has claimed yet.
CANCELLABLE_BULK_STATES = (BulkState.QUEUED, BulkState.RUNNING, BulkState.FANNED_OUT)


class AccessAction(models.TextChoices):
    """What the access audit records: signing in and out, and reads that carry data away.

    Retries are audited apart, as retry requests.
    """

    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed sign-in"
    LOCKOUT = "lockout", "Locked out"
    LOGOUT = "logout", "Signed out"
    CSV_EXPORT = "csv_export", "CSV export"
    CONFIG_DOWNLOAD = "config_download", "Config download"
    PERMISSION_DENIED = "permission_denied", "Permission denied"


class ViewPage(models.TextChoices):
    """The pages whose filters a saved view names (`dashboard.saved_views.PAGES`)."""

    SUMMARY = "summary", "Dashboard"
    HISTORY = "history", "History"
    PROBLEMS = "problems", "Problems"


class UpstreamTrouble(models.TextChoices):
    """Why the upstream is not serving us: no answer (timeouts, connection errors,
    5xx), or 429s. Our own request budget holding requests back is neither."""

    UNREACHABLE = "unreachable", "Unreachable"
    RATE_LIMITED = "rate_limited", "Rate limiting us"


class PollTier(models.TextChoices):
    """Why adaptive polling looks at a company as often as it does (`dashboard.polling`),
    most often first. Each tier's interval is the polling schedule's to set."""

    NEW = "new", "Not polled yet"
    RUNNING = "running", "A sync is running"
    MISSING_WEBHOOKS = "missing_webhooks", "Webhooks seem to be missing"
    FAILING = "failing", "Failing recently"
    RECENT = "recent", "Recent activity"
    IDLE = "idle", "Idle"
    DORMANT = "dormant", "Dormant"


@dataclass(frozen=True)
class Note:
    """The client-friendly note of a status code: what it means, what to do next.

    The next step names the fix, never a retry: whether a retry is possible
    depends on the sync (what is outstanding, who is looking, whether one is
    running), so the page adds that sentence itself (`dashboard.retry.advice`).
    """

    meaning: str
    next_step: str


NOTES: dict[int, Note] = {
    Code.IN_PROGRESS: Note(
        "The sync is running: the customer's expenses are being written to their "
        "accounting software.",
        "Nothing to do yet. This page refreshes itself until the sync ends.",
    ),
    Code.LONG_RUNNING: Note(
        "The sync has been running for over ten minutes. Large batches can take this long, "
        "but it may also be stuck waiting on the accounting software.",
        "Check whether the accounting platform is reachable; if it is still running in an "
        "hour, raise it with Codat support quoting the sync ID.",
    ),
    Code.SUCCESS: Note(
        "The sync finished and the expenses were written to the accounting software.",
        "Nothing to do, unless some items failed: they are listed under Push items, each with "
        "its message.",
    ),
    Code.SUCCESS_NO_DATA: Note(
        "The sync finished but there was nothing new to write.",
        "Nothing to do, unless the customer expected expenses to appear: then check that they "
        "were created before this sync started.",
    ),
    Code.CONFIGURATION_ERROR: Note(
        "The customer's sync configuration is not valid for their accounting software "
        "(for example a bank account or expense account that no longer exists).",
        "Open the Config tab, compare it with the accounting software, and ask the customer "
        "to fix the mapping.",
    ),
    Code.COMPANY_DELETED: Note(
        "The company was deleted, or its connection to the accounting software was removed.",
        "Ask the customer to reconnect their accounting software; nothing can be pushed until "
        "they do.",
    ),
    Code.COMPANY_DEAUTHORIZED: Note(
        "The company de-authorized the connection to its accounting software.",
        "Ask the customer to reconnect (re-authorize) their accounting software.",
    ),
    Code.BILLING_EXPIRED: Note(
        "The customer's subscription to their accounting software has expired.",
        "Ask the customer to renew their accounting subscription.",
    ),
    Code.SERVER_ERROR: Note(
        "An unexpected error happened on the upstream's side.",
        "Usually temporary. If it happens again, raise it with Codat support quoting the "
        "sync ID and the correlation ID in the error message.",
    ),
    Code.DUPLICATION_PROTECTION: Note(
        "Duplication protection stopped the sync: these expenses look like ones already written.",
        "Check the accounting software for these records first: if they are there, do not "
        "push them again.",
    ),
    Code.DATA_PROCESSING_ERROR: Note(
        "The expense data could not be processed (for example an invalid amount or date).",
        "Read the items' messages under Push items; the data must be corrected at the source "
        "first.",
    ),
    Code.DATA_PUSH_ERROR: Note(
        "The accounting software refused some records (for example a closed period, a missing "
        "tax rate, or an invalid account).",
        "Read each failed item's message under Push items, and ask the customer to fix the "
        "cause in their accounting software.",
    ),
}

UNKNOWN_NOTE = Note(
    "The upstream reported a status code this dashboard does not know.",
    "Check Codat's documentation for the code, and treat the sync as failed until then.",
)


def note_for(code: int) -> Note:
    return NOTES.get(code, UNKNOWN_NOTE)


# Codat's documentation of each status code, where the pages link to it. One
# page explains them all for now; a code with a page of its own gets its entry.
SYNC_STATUS_DOCS = "https://docs.codat.io/sync-for-expenses/sync-process/syncing-expenses"
STATUS_CODE_DOCS: dict[int, str] = {int(code): SYNC_STATUS_DOCS for code in Code}


def docs_for(code: int) -> str:
    """The page of Codat's documentation that explains a status code."""
    return STATUS_CODE_DOCS.get(code, SYNC_STATUS_DOCS)
