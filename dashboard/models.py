"""The dashboard's own tables: the mirror of the upstream, and what it observes.

Upstream fields keep the upstream's names and meaning; fields the mirror adds
(first seen, completed at, counts, fingerprints) say so in their help text.
Every row is written by `dashboard.ingest` through idempotent upserts keyed by
the upstream's IDs; the UI only reads.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .vocabulary import (
    ACTIVE_RETRY_STATES,
    CLAIMABLE_RETRY_STATES,
    FAILED_ITEM_STATUSES,
    FIRST_SYNC_FAILURE_CODE,
    IN_PROGRESS_CODES,
    AccessAction,
    BulkState,
    Category,
    ItemStatus,
    Learned,
    PollTier,
    ProblemEvent,
    ProblemState,
    PurgeReason,
    RetryState,
    UpstreamTrouble,
    ViewPage,
    status_label,
)

# The companies index's sorts: key (in its URL and its index's name) -> column.
COMPANY_SORT_COLUMNS = {
    "name": "name",
    "platform": "platform_name",
    "connection": "connection_status",
    "outstanding": "items_outstanding",
    "streak": "failing_streak",
    "last_sync": "last_sync_at",
    "last_success": "last_success_at",
    "problems": "problems_open",
}


class Company(models.Model):
    company_id = models.UUIDField(unique=True)
    name = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    platform_key = models.CharField(max_length=50, blank=True, default="")
    platform_name = models.CharField(
        max_length=100, blank=True, default="", help_text="The accounting software (target)."
    )
    connection_status = models.CharField(max_length=50, blank=True, default="")
    redirect_url = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="The upstream's `redirect`: the link that lets the customer connect (or "
        "reconnect) their accounting software.",
    )
    created = models.DateTimeField(null=True, blank=True, help_text="Upstream creation time.")
    first_seen = models.DateTimeField(default=timezone.now, help_text="Mirror: first fetched.")
    updated = models.DateTimeField(default=timezone.now, help_text="Mirror: last changed.")
    failing_streak = models.PositiveIntegerField(
        default=0, help_text="Mirror: failed syncs in a row, newest first, since the last success."
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="Mirror: start of the oldest sync in the failing streak."
    )
    items_outstanding = models.PositiveIntegerField(
        default=0, help_text="Mirror: transactions whose latest push failed or ended pending."
    )
    syncs_outstanding = models.PositiveIntegerField(
        default=0, help_text="Mirror: original syncs (not retries) with an outstanding item."
    )
    problems_open = models.PositiveIntegerField(
        default=0,
        help_text="Mirror: open or regressed problems with an outstanding share of this company.",
    )
    last_sync_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Mirror: the start (syncUtc) of its newest sync, kept by ingest with the "
        "failing streak; empty: no sync yet.",
    )
    last_success_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Mirror: the start of its newest successful sync (a retry's included), kept "
        "by ingest with the failing streak; empty: none yet.",
    )
    state_built_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Mirror: when `manage.py build_current_state` last built this company's "
        "current state from its history (ingest keeps it up to date after that).",
    )
    poll_tier = models.CharField(
        max_length=20,
        choices=PollTier.choices,
        default=PollTier.NEW,
        help_text="Adaptive polling: why it is polled as often as it is (its tier, worked out "
        "again after each refresh and webhook).",
    )
    poll_due = models.DateTimeField(
        "next poll",
        default=timezone.now,
        help_text="Adaptive polling: its next poll is due then (most overdue first).",
    )

    class Meta:
        verbose_name_plural = "companies"
        permissions = [("purge_company", "Can erase a company's mirrored data")]
        indexes = [
            models.Index(fields=["platform_name"]),
            models.Index(fields=["-failing_streak"], name="company_streak"),
            # The dashboard's "outstanding now": index-only on PostgreSQL.
            models.Index(
                fields=["platform_name"],
                include=["items_outstanding", "syncs_outstanding"],
                name="company_outstanding",
                condition=models.Q(items_outstanding__gt=0),
            ),
            # The Problems page's "N companies affected" by open problems.
            models.Index(
                fields=["platform_name"],
                name="company_problems_open",
                condition=models.Q(problems_open__gt=0),
            ),
            # Adaptive polling's one query a tick: the most overdue first.
            models.Index(fields=["poll_due", "id"], name="company_poll_due"),
            # The companies index: one per sort, read forwards or backwards a
            # page at a time (the ID breaks ties, so a cursor is exact).
            *(
                models.Index(fields=[column, "id"], name=f"company_by_{key}")
                for key, column in COMPANY_SORT_COLUMNS.items()
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        """The company's page (Django admin links to it: "View on site")."""
        return reverse("company-detail", args=[self.company_id])


class RefreshState(models.Model):
    """Per company: how the mirror's refreshes of it went."""

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, primary_key=True, related_name="refresh"
    )
    last_success = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="Rate limited: no refresh before this time."
    )
    config_fetched_at = models.DateTimeField(null=True, blank=True)
    push_fetched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refresh of {self.company_id}"


class Sync(models.Model):
    sync_id = models.UUIDField(unique=True)
    # Its own index is the first column of sync_company_time.
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, db_index=False, related_name="syncs"
    )
    # Upstream fields.
    status_code = models.PositiveSmallIntegerField()
    status_text = models.CharField(max_length=200, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    exception_message = models.TextField(blank=True, default="")
    sync_utc = models.DateTimeField(help_text="Upstream syncUtc: when the sync started.")
    data_pushed = models.BooleanField(default=False)
    # What the mirror observes.
    category = models.PositiveSmallIntegerField(
        choices=Category.choices, help_text="Failed if the code failed or any item failed."
    )
    first_seen = models.DateTimeField(default=timezone.now, help_text="Mirror: first fetched.")
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="Mirror: when the sync was first seen terminal."
    )
    last_refreshed = models.DateTimeField(default=timezone.now)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    items_total = models.PositiveIntegerField(default=0)
    items_completed = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    items_pending = models.PositiveIntegerField(default=0)
    items_status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Mirror: the status code when items were last fetched."
    )
    items_fetched_at = models.DateTimeField(null=True, blank=True)
    error_fingerprint = models.CharField(max_length=64, blank=True, default="")
    duration_s = models.PositiveIntegerField(
        null=True, blank=True, help_text="Mirror: seconds from start to completion, when observed."
    )
    items_outstanding = models.PositiveIntegerField(
        default=0,
        db_default=0,
        help_text="Mirror: this sync's items whose transaction is still outstanding (its latest "
        "push, here or in a later sync, failed or ended pending).",
    )
    resolved_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Mirror: when the last of its outstanding items was pushed (the resolving "
        "sync's start); empty while any is outstanding, or if none ever was.",
    )
    resolved_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Mirror: the sync whose push completed the last of its outstanding items.",
    )
    chain_category = models.PositiveSmallIntegerField(
        choices=Category.choices,
        null=True,
        blank=True,
        help_text="Mirror: what this sync and its retries count as, at this sync's place in the "
        "timeline (resolved counts as a success); empty for a retry, which is part of another's.",
    )
    problem = models.ForeignKey(
        "Problem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
        help_text="Mirror: for a failed sync without items, the problem its error belongs to.",
    )
    platform_name = models.CharField(
        max_length=100,
        blank=True,
        default="",
        # Kept in the database too: a worker still on the code before this
        # column inserts syncs without it during a deploy.
        db_default="",
        help_text="Mirror: the company's accounting platform, kept equal to it by ingest, so "
        "that the history filters and sorts by platform without a join.",
    )
    # Freshness: each change (a new sync, a new status) is written with when
    # the mirror learned of it and the best-known time it happened upstream.
    learned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Mirror: when it learned of the sync's latest change (new, or a new status).",
    )
    changed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Upstream: the best-known time of that change: the webhook's time; else "
        "the sync's start, or when the mirror last wrote it before, the earliest it can be.",
    )
    learned_by = models.PositiveSmallIntegerField(
        choices=Learned.choices,
        default=Learned.BACKFILL,
        db_default=Learned.BACKFILL,
        help_text="Mirror: how it learned of that change (a first read counts no lag).",
    )

    class Meta:
        permissions = [
            ("retry_sync", "Can retry the failed items of a sync"),
            ("bulk_retry", "Can retry the failed items of many syncs at once"),
            ("export_beyond_cap", "Can export more syncs than the CSV export's row cap"),
        ]
        indexes = [
            models.Index(fields=["-sync_utc", "-id"], name="sync_time"),
            # The dashboard's "new since your last visit": the syncs mirrored since.
            models.Index(fields=["first_seen"], name="sync_first_seen"),
            # The mirror's lag over the last hour: the changes it learned of, first reads apart.
            models.Index(
                fields=["learned_at"],
                include=["changed_at", "learned_by"],
                name="sync_learned",
                condition=models.Q(learned_by__gt=0),
            ),
            models.Index(fields=["status_code", "-sync_utc"], name="sync_code_time"),
            models.Index(fields=["category", "-sync_utc"], name="sync_category_time"),
            # The dashboard's failing companies and error groups: index-only on PostgreSQL.
            models.Index(
                fields=["category", "sync_utc"],
                include=["company", "error_fingerprint", "id"],
                name="sync_failures",
            ),
            models.Index(fields=["company", "-sync_utc"], name="sync_company_time"),
            models.Index(fields=["error_fingerprint", "-sync_utc"], name="sync_fingerprint_time"),
            models.Index(fields=["items_total", "id"], name="sync_items"),
            # The history sorted by status reads this in order and stops at a page.
            models.Index(fields=["status_code", "id"], name="sync_code_order"),
            # Covers the dashboard's one pass over a date range (index-only on PostgreSQL).
            models.Index(
                fields=["sync_utc"],
                include=["status_code", "category", "items_completed", "items_failed"],
                name="sync_summary",
            ),
            models.Index(fields=["duration_s", "id"], name="sync_duration"),
            # The history filtered by platform (in time order, and its capped
            # count), and sorted by platform.
            models.Index(fields=["platform_name", "-sync_utc", "-id"], name="sync_platform_time"),
            models.Index(fields=["platform_name", "id"], name="sync_platform_order"),
            # Current state: the history filtered to outstanding (originals: a
            # retry's items count in its original) or resolved syncs, a company's
            # outstanding originals, and failing chains for the rankings. Partial,
            # so that the many syncs with nothing outstanding cost no entry, and
            # counted from the index alone.
            models.Index(
                fields=["-sync_utc", "-id"],
                name="sync_outstanding_orig",
                condition=models.Q(items_outstanding__gt=0, retry_of__isnull=True),
            ),
            models.Index(
                fields=["-sync_utc", "-id"],
                name="sync_resolved_time",
                condition=models.Q(resolved_at__isnull=False),
            ),
            models.Index(
                fields=["company", "-sync_utc"],
                name="sync_company_outstanding_orig",
                condition=models.Q(items_outstanding__gt=0, retry_of__isnull=True),
            ),
            models.Index(
                fields=["sync_utc"],
                include=["company", "error_fingerprint", "id"],
                name="sync_failing_chains",
                condition=models.Q(chain_category=Category.FAILED),
            ),
            # A problem's failed syncs without items (few: only those carry one).
            models.Index(
                fields=["problem", "-sync_utc"],
                name="sync_problem_time",
                condition=models.Q(problem__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return str(self.sync_id)

    def get_absolute_url(self) -> str:
        """The sync's page (Django admin links to it: "View on site")."""
        return reverse("sync-detail", args=[self.sync_id])

    @property
    def is_terminal(self) -> bool:
        return self.status_code not in IN_PROGRESS_CODES

    @property
    def status_label(self) -> str:
        return status_label(self.status_code, self.status_text)

    @property
    def failed_by_items(self) -> bool:
        """Failed although the sync's own code is not a failure: some of its items failed."""
        return self.category == Category.FAILED and self.status_code < FIRST_SYNC_FAILURE_CODE


class SyncRollup(models.Model):
    """Syncs per UTC hour, status code and category: what the dashboard adds up.

    Rebuilt from the syncs by `dashboard.rollup` for the hours that database
    triggers marked in `RollupDirty`; an hour still marked is read live from
    the syncs, so the dashboard is exact whether or not the rollup is current.
    """

    hour = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField()
    category = models.PositiveSmallIntegerField(choices=Category.choices)
    syncs = models.PositiveIntegerField()
    items_completed = models.PositiveBigIntegerField()
    items_failed = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "status_code", "category"], name="sync_rollup_key"
            )
        ]
        indexes = [
            # The key with the counts: on PostgreSQL a month of the dashboard is
            # an index-only scan (SQLite has no covering indexes, and skips it).
            models.Index(
                fields=["hour", "status_code", "category"],
                include=["syncs", "items_completed", "items_failed"],
                name="sync_rollup_cover",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.status_code}: {self.syncs}"


class RankingSnapshot(models.Model):
    """The dashboard's rankings for one preset range, as the rankings task last counted them.

    Failing companies and error groups aggregate every failed sync of the
    range; beat recounts them every minute (`dashboard.rankings`), and the
    dashboard shows them with the time they were counted. A snapshot older
    than a few minutes (beat stopped) is ignored and the page counts live.
    """

    range_key = models.CharField(max_length=10, unique=True)
    computed_at = models.DateTimeField()
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField()
    failing_companies = models.JSONField(
        default=list,
        help_text="[{company: {pk, company_id, name, platform_name}, failed: n, last: ISO time}], "
        "most failed first.",
    )
    errors = models.JSONField(
        default=list,
        help_text="[{fingerprint, count, companies, message}], most frequent first.",
    )
    streaks = models.JSONField(
        default=list,
        help_text="[{company_id, name, failing_streak, failing_since}], longest first.",
    )
    long_running = models.JSONField(
        default=list, help_text="[{sync_id, sync_utc, company: {name}}], oldest first."
    )
    long_running_count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.range_key} at {self.computed_at:%Y-%m-%d %H:%M:%S}"


class RollupDirty(models.Model):
    """An hour whose syncs changed after its rollup rows were made.

    Written only by triggers on the sync table (migration 0009), so every
    writer marks the hours it touches: ingest, the admin, a shell, a bulk load.
    """

    hour = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "rollup dirty hours"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00}"


class PushItem(models.Model):
    """One transaction's status in one sync, with the data type it was pushed as."""

    # Its own index is the first column of the unique key and two others.
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, db_index=False, related_name="items")
    transaction_id = models.UUIDField(help_text="The core ID.")
    integration_type = models.CharField(max_length=20, default="expenses")
    data_type = models.CharField(max_length=50, blank=True, default="")
    status = models.PositiveSmallIntegerField(choices=ItemStatus.choices)
    message = models.TextField(null=True, blank=True)  # noqa: DJ001 - null: the upstream sent none
    fingerprint = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sync", "transaction_id", "integration_type"], name="push_item_key"
            )
        ]
        indexes = [
            models.Index(fields=["sync", "status"], name="push_item_sync_status"),
            # The Push items tab lists a sync's items in id order: without this
            # PostgreSQL may walk the whole table by primary key to fill a page.
            models.Index(fields=["sync", "id"], name="push_item_sync_order"),
            models.Index(fields=["transaction_id"], name="push_item_transaction"),
            # Only failed items carry a fingerprint: a partial index spares every
            # completed item an index entry (most of the table, on every ingest).
            models.Index(
                fields=["fingerprint"],
                name="push_item_fingerprint",
                condition=~models.Q(fingerprint=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} in {self.sync_id}"

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_ITEM_STATUSES

    @property
    def status_css(self) -> str:
        return ItemStatus(self.status).css


class TransactionState(models.Model):
    """One transaction's current state: its latest push across the original sync and retries.

    "Latest" is the pushing sync's syncUtc, then its sync ID, never the order in
    which the mirror received them, so ingest keeps it the same whatever order
    webhooks and polls arrive in (`dashboard.ingest.state`). Only transactions
    that were ever pushed without completing have a row: one completed at its
    first push has nothing to resolve.
    """

    # Its own index is the unique key's first column (company, transaction ID).
    company = models.ForeignKey(Company, on_delete=models.CASCADE, db_index=False, related_name="+")
    transaction_id = models.UUIDField(help_text="The core ID.")
    last_sync = models.ForeignKey(
        Sync,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The latest sync that pushed it.",
    )
    last_sync_utc = models.DateTimeField(help_text="That sync's syncUtc.")
    status = models.PositiveSmallIntegerField(
        choices=ItemStatus.choices, help_text="Its status in that sync."
    )
    outstanding = models.BooleanField(
        help_text="Failed, or pending in a sync that has ended: still to be pushed."
    )
    problem = models.ForeignKey(
        "Problem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
        help_text="While outstanding: the problem of the push that left it unpushed.",
    )
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company", "transaction_id"], name="transaction_state_key"
            )
        ]
        indexes = [
            models.Index(fields=["transaction_id"], name="transaction_state_tid"),
            models.Index(
                fields=["last_sync"],
                name="transaction_state_tip",
                condition=models.Q(outstanding=True),
            ),
            # A company's outstanding count, recounted at every upkeep.
            models.Index(
                fields=["company"],
                name="transaction_state_open",
                condition=models.Q(outstanding=True),
            ),
            # A problem's outstanding items, newest first, and its companies.
            models.Index(
                fields=["problem", "-last_sync_utc"],
                name="transaction_state_problem",
                condition=models.Q(outstanding=True),
            ),
            # A problem's syncs: the tips holding its outstanding items, read (and
            # counted, distinct) from the index alone on PostgreSQL.
            models.Index(
                fields=["problem", "last_sync"],
                include=["last_sync_utc"],
                name="transaction_state_problem_tip",
                condition=models.Q(outstanding=True),
            ),
            # Every outstanding item, newest first: the item search by message
            # reads a bounded stretch of it, a page at a time.
            models.Index(
                fields=["-last_sync_utc", "-id"],
                name="transaction_state_recent",
                condition=models.Q(outstanding=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction_id} ({'outstanding' if self.outstanding else 'done'})"


class ConfigSnapshot(models.Model):
    """A company's sync configuration, one row per distinct version seen."""

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="configs")
    fetched_at = models.DateTimeField(default=timezone.now)
    digest = models.CharField(max_length=64)
    config = models.JSONField()

    class Meta:
        get_latest_by = "fetched_at"
        indexes = [models.Index(fields=["company", "-fetched_at"], name="config_company_time")]

    def __str__(self) -> str:
        return f"config of {self.company_id} at {self.fetched_at:%Y-%m-%d %H:%M}"


class WebhookEvent(models.Model):
    """A verified webhook delivery, stored once per delivery ID."""

    delivery_id = models.CharField(max_length=200, unique=True)
    event_type = models.CharField(max_length=100)
    body = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    company_id = models.UUIDField(null=True, blank=True)
    sync_id = models.UUIDField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["-received_at"], name="webhook_received"),
            models.Index(fields=["sync_id"], name="webhook_sync"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.delivery_id}"


class Theme(models.TextChoices):
    """The pages' colours: as the system says (the browser's `prefers-color-scheme`), or one
    of the two always."""

    SYSTEM = "system", "System"
    LIGHT = "light", "Light"
    DARK = "dark", "Dark"


class UserPreference(models.Model):
    """How one user wants to see times (UTC, the default, or a local time zone) and the pages'
    colours (light, dark, or as their system says), and when they last looked at the pages
    that mark what is new."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sync_health_preference"
    )
    use_local_time = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, default="UTC")
    # With a database default too: a web server of the previous release, still running while
    # a deployment migrates, adds preference rows without naming this column.
    theme = models.CharField(
        max_length=10, choices=Theme.choices, default=Theme.SYSTEM, db_default=Theme.SYSTEM
    )
    problems_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When they last opened the Problems page: what is new or regressed since.",
    )
    syncs_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When they last opened the dashboard or the history: which syncs are new since.",
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone if self.use_local_time else 'UTC'})"

    @property
    def active_zone(self) -> str:
        return self.time_zone if self.use_local_time else "UTC"


class SavedView(models.Model):
    """A page's filters under a name: its owner's alone, or shared with the team.

    Who may do what is `dashboard.saved_views`' to say: its owner edits it,
    leads also edit a shared one, everyone with a support role opens a shared one.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    page = models.CharField(max_length=20, choices=ViewPage.choices)
    name = models.CharField(max_length=100)
    query = models.CharField(
        max_length=2000,
        help_text="The page's filters as a query string: only its own parameters, in a fixed "
        "order, never a page cursor.",
    )
    shared = models.BooleanField(default=False, help_text="Listed for everyone with a role.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        permissions = [
            ("share_savedview", "Can share a saved view with the team"),
            ("manage_shared_savedview", "Can rename, unshare or delete anyone's shared view"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["owner", "page", "name"], name="saved_view_name"),
        ]
        indexes = [
            # A page's menu: the team's shared views (each user's own come by `owner`).
            models.Index(
                fields=["page", "name"], name="saved_view_shared", condition=models.Q(shared=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_page_display()})"


class DefaultView(models.Model):
    """The saved view a user's visit to a page without filters opens: one per user and page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="default_views"
    )
    page = models.CharField(max_length=20, choices=ViewPage.choices)
    view = models.ForeignKey(SavedView, on_delete=models.CASCADE, related_name="defaults")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "page"], name="default_view_per_page"),
        ]

    def __str__(self) -> str:
        return f"{self.user}'s {self.get_page_display()}: {self.view.name}"


class BulkRetry(models.Model):
    """Many retry requests made at once from a filter (history or company page), or for a
    problem's outstanding items (its page).

    Opening the preview freezes the filter's candidate syncs as members of a
    *draft*, read in the user's time zone; confirming turns the draft (minus
    the members left out) into the exact set the worker retries. The filter
    is kept to describe the selection and link back to it, never read again.
    A problem's retry freezes the problem's outstanding transactions instead
    (`dashboard.bulk_retry.problem`).
    """

    key = models.UUIDField(unique=True, help_text="The confirmation form's token.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(
        default=timezone.now, help_text="When the preview was opened and its syncs frozen."
    )
    scope = models.TextField(
        help_text="The filter, as the history's query string; empty for a problem's retry."
    )
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="The zone the filter's dates were read in."
    )
    description = models.TextField(blank=True, default="")
    problem = models.ForeignKey(
        "Problem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bulk_retries",
        help_text="Made from a problem's page: the problem whose outstanding items it retries.",
    )
    state = models.CharField(max_length=20, choices=BulkState.choices, default=BulkState.DRAFT)
    planned_syncs = models.PositiveIntegerField(default=0)
    planned_items = models.PositiveIntegerField(default=0)
    planned_companies = models.PositiveIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "bulk retries"
        indexes = [models.Index(fields=["-created_at"], name="bulk_created")]

    def __str__(self) -> str:
        return f"bulk retry {self.pk} by {self.user}"


class BulkMember(models.Model):
    """One sync of a bulk retry, as its preview showed it.

    A row per sync rather than a list on the bulk: the preview and the report
    page through thousands of members by group, leaving one out is an update
    of a row, and each member links the request the worker made for it.
    """

    bulk = models.ForeignKey(BulkRetry, on_delete=models.CASCADE, related_name="members")
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="+")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    status_code = models.PositiveSmallIntegerField(help_text="The sync's code in the preview.")
    fingerprint = models.CharField(
        max_length=64, blank=True, default="", help_text="Its error fingerprint in the preview."
    )
    items = models.PositiveIntegerField(help_text="Its outstanding items in the preview.")
    included = models.BooleanField(default=True, help_text="False: left out in the preview.")
    transaction_ids = models.JSONField(
        null=True,
        blank=True,
        help_text="A problem's retry: only these transactions are requested, as the preview "
        "froze them (those still outstanding then). Null: every outstanding item of the chain.",
    )
    named = models.JSONField(
        default=list,
        blank=True,
        help_text="A problem's retry: the syncs its request was to name in the preview, where "
        "each of those transactions last failed.",
    )
    request = models.OneToOneField(
        "RetryRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bulk_member",
        help_text="The request made for it (or the record of why it was skipped).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bulk", "sync"], name="bulk_member_once"),
        ]
        indexes = [
            models.Index(fields=["bulk", "status_code", "fingerprint", "id"], name="bulk_group"),
        ]

    def __str__(self) -> str:
        return f"{self.sync_id} in bulk retry {self.bulk_id}"

    @property
    def group_key(self) -> str:
        return group_key(self.status_code, self.fingerprint)


class BulkAlong(models.Model):
    """Outstanding items of other causes that a problem's bulk retry re-pushes too.

    Codat re-pushes every failed item of the syncs a retry names, and nobody
    can pick items: a sync holding the problem's items may hold others'. The
    preview counts them per named sync and per problem, once, so the person
    sees what goes along before confirming.
    """

    bulk = models.ForeignKey(BulkRetry, on_delete=models.CASCADE, related_name="along")
    member = models.ForeignKey(BulkMember, on_delete=models.CASCADE, related_name="along")
    sync = models.ForeignKey(
        Sync, on_delete=models.CASCADE, related_name="+", help_text="The named sync holding them."
    )
    problem = models.ForeignKey(
        "Problem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Their problem in the preview; empty: in none.",
    )
    items = models.PositiveIntegerField()

    class Meta:
        verbose_name_plural = "bulk retry items along"
        indexes = [models.Index(fields=["bulk", "problem"], name="bulk_along_problem")]

    def __str__(self) -> str:
        return f"{self.items} along in {self.sync_id} (bulk retry {self.bulk_id})"


def group_key(status_code: int, fingerprint: str) -> str:
    """How a preview's group is named in its links and forms: `5130:0123456789abcdef`."""
    return f"{status_code}:{fingerprint}"


class RetryRequest(models.Model):
    """One request to re-push a sync's failed items: the audit record.

    Kept as long as the history it names (`dashboard.retention.history`), or
    until its company is purged.
    """

    key = models.UUIDField(unique=True, help_text="Idempotency-Key sent to the upstream.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    sync = models.ForeignKey(Sync, on_delete=models.PROTECT, related_name="retry_requests")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    bulk = models.ForeignKey(
        BulkRetry, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    state = models.CharField(max_length=20, choices=RetryState.choices, default=RetryState.QUEUED)
    reason = models.TextField(blank=True, default="")
    failed_items = models.JSONField(
        default=list, help_text="Transaction IDs of the failed items when the request was made."
    )
    item_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A running request's worker holds it until then; a queued one waiting to try "
        "again is due by then. Past it, the follow-up picks the request up again.",
    )
    posted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the first POST to the upstream was about to be sent: later attempts "
        "look upstream for the sync it may have started, and no one can cancel it any more.",
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    new_sync_id = models.UUIDField(null=True, blank=True)
    sync_ids = models.JSONField(
        default=list,
        help_text="The syncs named in the POST: for each outstanding item, the sync where it "
        "last failed (the tip of its retry chain).",
    )
    other_items = models.PositiveIntegerField(
        default=0,
        help_text="Outstanding items of those syncs that are not this sync's: they go along.",
    )
    pushed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of the requested items, how many the new sync pushed."
    )
    completed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of the requested items, how many the new sync completed."
    )
    failed_again = models.PositiveIntegerField(null=True, blank=True)
    not_repushed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Of the requested items, how many the new sync left out."
    )
    not_repushed_reasons = models.JSONField(
        default=dict, blank=True, help_text="{reason: count} for the items left out."
    )

    class Meta:
        permissions = [("cancel_retry", "Can cancel a retry request before it is sent")]
        constraints = [
            # At most one request in flight per sync: a double click, or two
            # people at once, make one push.
            models.UniqueConstraint(
                fields=["sync"],
                condition=models.Q(state__in=["queued", "running", "submitted"]),
                name="one_active_retry_per_sync",
            )
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="retry_created"),
            models.Index(fields=["state", "created_at"], name="retry_state"),
            models.Index(fields=["new_sync_id"], name="retry_new_sync"),
            # A company's timeline, newest first.
            models.Index(fields=["company", "-created_at", "-id"], name="retry_company_time"),
        ]

    def __str__(self) -> str:
        return f"retry of {self.sync_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RETRY_STATES

    @property
    def can_cancel(self) -> bool:
        """Nothing has gone to the upstream yet (the worker marks `posted_at` first)."""
        return self.state in CLAIMABLE_RETRY_STATES and self.posted_at is None


class MetricSample(models.Model):
    """One series of the Prometheus metrics, as the processes that count it have added up.

    Used when there is no Redis (the embedded defaults): every process (web,
    workers) adds what it counted here, and `/metrics` reads the totals
    (`dashboard.metrics`). A row named `report:…` is instead one process's
    latest reading of a gauge only it can see (its own request budget).
    """

    name = models.CharField(max_length=200)
    labels = models.CharField(max_length=500, help_text="The label values, as sorted JSON.")
    value = models.FloatField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"], name="metric_sample_series")
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"


class AccessEvent(models.Model):
    """One sign-in, sign-out, refusal or read that carries data away: the access audit.

    It outlives what it names. No foreign key reaches a mirrored row: a company
    is kept as its ID and name at the time, so purging it from the mirror
    leaves its audit whole. The user is kept by name as well as by key, so the
    trail of a deleted account still says whose it was. Rows are only ever
    added; `dashboard.audit.prune` removes them by age.
    """

    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=30, choices=AccessAction.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for a failed sign-in, or once the account is deleted.",
    )
    username = models.CharField(
        max_length=150, blank=True, default="", help_text="As typed, for a failed sign-in."
    )
    client_ip = models.GenericIPAddressField(
        "client address", null=True, blank=True, help_text="Read through TRUSTED_PROXIES."
    )
    path = models.CharField(max_length=500, blank=True, default="")
    company_id = models.UUIDField(null=True, blank=True)
    company_name = models.CharField(
        max_length=500, blank=True, default="", help_text="The company's name at the time."
    )
    detail = models.JSONField(
        default=dict,
        blank=True,
        help_text="What else the event says: an export's filter and rows, the role lacking.",
    )

    class Meta:
        indexes = [
            # The audit page, newest first: in all, by action, by user.
            models.Index(fields=["-at", "-id"], name="access_time"),
            models.Index(fields=["action", "-at", "-id"], name="access_action_time"),
            models.Index(fields=["username", "-at", "-id"], name="access_user_time"),
        ]

    def __str__(self) -> str:
        who = self.username or "someone"
        return f"{self.get_action_display()} by {who} at {self.at:%Y-%m-%d %H:%M:%S}"


class PurgeRecord(models.Model):
    """That one company's mirrored data was erased: which company, why, by whom and when.

    Nothing personal stays: the company is named by its upstream ID (the key
    the upstream's own records and the audit rows name it by), never by its
    name or description; the person who asked, by username, so the record
    outlives their account. The record is also a tombstone: the mirror never
    fetches a purged company again, so the next poll cannot undo the erasure.
    """

    company_id = models.UUIDField(unique=True, help_text="The upstream's company ID.")
    reason = models.CharField(max_length=20, choices=PurgeReason.choices)
    requested_by = models.CharField(max_length=150, help_text="Username of who asked for it.")
    requested_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last of its rows was removed."
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A worker erasing it holds it until then; past it, the hourly retention "
        "task carries on where it stopped.",
    )
    removed = models.JSONField(
        default=dict, blank=True, help_text="{kind of row: how many were removed}."
    )

    class Meta:
        indexes = [models.Index(fields=["-requested_at"], name="purge_requested")]

    def __str__(self) -> str:
        return f"purge of {self.company_id}"


class Problem(models.Model):
    """A group of outstanding failures with one cause, across companies and syncs.

    Its cause is a status code, a data type and a normalised message
    (`dashboard.fingerprint`); the fingerprints that name it are its aliases
    (`ProblemAlias`), so a better normaliser re-points fingerprints without
    losing what people attached to the group. Its counts are kept by ingest
    (`dashboard.problems.upkeep`): the sum of its rows per company.
    """

    status_code = models.PositiveSmallIntegerField()
    data_type = models.CharField(max_length=50, blank=True, default="")
    cause = models.TextField(help_text="The normalised message: the cause, with placeholders.")
    example = models.TextField(blank=True, default="", help_text="One full message of it.")
    state = models.CharField(max_length=20, choices=ProblemState.choices, default=ProblemState.OPEN)
    state_changed_at = models.DateTimeField(default=timezone.now)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snooze_until_failures = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A snooze ends when its outstanding items reach this many.",
    )
    state_before_snooze = models.CharField(max_length=20, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    ticket_url = models.CharField(
        max_length=500, blank=True, default="", help_text="An http(s) link."
    )
    items_outstanding = models.PositiveIntegerField(default=0)
    syncs_outstanding = models.PositiveIntegerField(default=0)
    companies_outstanding = models.PositiveIntegerField(default=0)
    companies_version = models.PositiveIntegerField(
        default=0,
        help_text="Counts the times a company gained or lost its share: the key under which "
        "the list's headline keeps the problem's set of companies.",
    )
    first_seen = models.DateTimeField(default=timezone.now, help_text="Its first failure's start.")
    last_seen = models.DateTimeField(default=timezone.now, help_text="Its latest failure's start.")
    created_at = models.DateTimeField(default=timezone.now, help_text="When the mirror found it.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    regressed_at = models.DateTimeField(null=True, blank=True)
    trend = models.JSONField(
        default=dict,
        blank=True,
        help_text="{day: outstanding items that failed that day}, UTC days.",
    )
    platforms = models.JSONField(
        default=dict, blank=True, help_text="{platform: companies with it outstanding}."
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged"
    )
    playbook = models.TextField(
        blank=True, default="", help_text="Remediation steps (Markdown); empty: the code's note."
    )
    customer_message = models.TextField(
        blank=True, default="", help_text="Template for the customer; empty: the default one."
    )
    playbook_version = models.PositiveIntegerField(default=0)

    class Meta:
        permissions = [
            ("triage_problem", "Can assign a problem, note it, and change its state"),
            ("edit_playbook", "Can edit a problem's playbook and customer message"),
            ("merge_problem", "Can merge two problems"),
        ]
        indexes = [
            # The Problems page by impact, in each state.
            models.Index(
                fields=["state", "-companies_outstanding", "-items_outstanding", "id"],
                name="problem_impact",
            ),
            models.Index(
                fields=["-companies_outstanding", "-items_outstanding", "id"],
                name="problem_impact_all",
            ),
            models.Index(fields=["-last_seen", "id"], name="problem_last_seen"),
            models.Index(fields=["status_code"], name="problem_code"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.status_code} {self.cause[:80]}"

    def get_absolute_url(self) -> str:
        return reverse("problem-detail", args=[self.pk])


class ProblemAlias(models.Model):
    """One fingerprint (status code, data type, normalised message's hash) of a problem."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="aliases")
    status_code = models.PositiveSmallIntegerField()
    data_type = models.CharField(max_length=50, blank=True, default="")
    fingerprint = models.CharField(max_length=64)
    example = models.TextField(
        blank=True, default="", help_text="A full message, to fingerprint again later."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "problem aliases"
        constraints = [
            models.UniqueConstraint(
                fields=["status_code", "data_type", "fingerprint"], name="problem_alias_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.status_code}/{self.data_type}/{self.fingerprint} -> {self.problem_id}"


class ProblemCompany(models.Model):
    """One company's outstanding share of a problem: what the problem's counts add up."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="companies")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="+")
    items = models.PositiveIntegerField(default=0)
    syncs = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    days = models.JSONField(default=dict, blank=True, help_text="{day: items} of the last days.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["problem", "company"], name="problem_company_key")
        ]
        indexes = [
            models.Index(fields=["problem", "-items", "id"], name="problem_company_items"),
            models.Index(fields=["company"], name="problem_company_company"),
        ]

    def __str__(self) -> str:
        return f"{self.company_id} in problem {self.problem_id}: {self.items}"


class ProblemActivity(models.Model):
    """One change to a problem, by a person or by the mirror (no user): its activity."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="activity")
    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True, default="")
    event = models.CharField(max_length=20, choices=ProblemEvent.choices)
    text = models.TextField(blank=True, default="", help_text="A note, or what changed.")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "problem activity"
        indexes = [models.Index(fields=["problem", "-at", "-id"], name="problem_activity_time")]

    def __str__(self) -> str:
        return f"{self.get_event_display()} on {self.problem_id} by {self.username or 'mirror'}"


class PlaybookVersion(models.Model):
    """One saved version of a problem's playbook and customer message."""

    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="playbooks")
    version = models.PositiveIntegerField()
    playbook = models.TextField(blank=True, default="")
    customer_message = models.TextField(blank=True, default="")
    edited_by = models.CharField(max_length=150)
    edited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["problem", "version"], name="playbook_version_once")
        ]

    def __str__(self) -> str:
        return f"playbook {self.version} of problem {self.problem_id}"


class SystemHealth(models.Model):
    """One row (pk 1): the mirror's own health, shared by every process
    (`dashboard.health_signals`). Written only when a signal changes."""

    watching_since = models.DateTimeField(
        default=timezone.now, help_text="When a process first recorded a signal."
    )
    last_refresh_at = models.DateTimeField(
        null=True, blank=True, help_text="The latest successful company refresh (to the minute)."
    )
    upstream_trouble_since = models.DateTimeField(
        null=True, blank=True, help_text="Unreachable or rate limiting us since; empty: fine."
    )
    upstream_trouble_kind = models.CharField(
        max_length=20, choices=UpstreamTrouble.choices, blank=True, default=""
    )

    class Meta:
        verbose_name_plural = "system health"

    def __str__(self) -> str:
        return "system health"


class WebhookGap(models.Model):
    """A sync that polling found finished without its webhook (receiver configured).

    It counts as missed from `missed_at` (the grace period after its best-known
    end has passed with no webhook); a webhook that comes afterwards makes it
    late, one that comes before makes it nothing at all.
    """

    sync_id = models.UUIDField(unique=True)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, db_index=False, related_name="+")
    ended_at = models.DateTimeField(help_text="Best-known end: it had not ended before this.")
    found_at = models.DateTimeField(help_text="The poll that found it finished.")
    due_at = models.DateTimeField(help_text="No webhook by then: missed.")
    missed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was counted missed; empty: not (yet)."
    )
    webhook_at = models.DateTimeField(
        null=True, blank=True, help_text="When its webhook arrived, after all."
    )

    class Meta:
        indexes = [
            models.Index(fields=["missed_at"], name="webhook_gap_missed"),
            models.Index(fields=["company", "missed_at"], name="webhook_gap_company"),
            models.Index(
                fields=["due_at"],
                condition=models.Q(missed_at__isnull=True, webhook_at__isnull=True),
                name="webhook_gap_due",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook gap {self.sync_id}"

    @property
    def late(self) -> bool:
        return bool(self.missed_at and self.webhook_at)


def _default_poll_share() -> float:
    return settings.CODAT_POLL_SHARE


def _minutes(tier: PollTier, default: int, what: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        f"{tier.label}: minutes",
        default=default,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=f"Minutes between polls of a company {what} (1 to 1440: every company is "
        "checked at least once a day).",
    )


class PollingSchedule(models.Model):
    """One row (pk 1): how often adaptive polling looks at each tier of company, and the
    share of the request budget it may take (`dashboard.polling`). Admins change it in
    Django admin; a shorter interval brings forward the polls already scheduled."""

    share = models.FloatField(
        default=_default_poll_share,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The share (0-1) of the request budget polling may take in any window; the "
        "rest is for webhook refreshes, retries and people. It also shrinks as the upstream's "
        "X-Rate-Limit-Remaining falls. Default: CODAT_POLL_SHARE.",
    )
    new_minutes = _minutes(PollTier.NEW, 1, "the mirror has not polled yet")
    running_minutes = _minutes(PollTier.RUNNING, 2, "with a sync running")
    missing_webhooks_minutes = _minutes(
        PollTier.MISSING_WEBHOOKS, 5, "whose webhooks seem to be missing"
    )
    failing_minutes = _minutes(PollTier.FAILING, 5, "failing recently")
    recent_minutes = _minutes(PollTier.RECENT, 10, "with recent activity")
    idle_minutes = _minutes(PollTier.IDLE, 60, "idle")
    dormant_minutes = _minutes(PollTier.DORMANT, 24 * 60, "dormant")
    recent_hours = models.PositiveIntegerField(
        default=24,
        validators=[MinValueValidator(1)],
        help_text="A sync started within this many hours is recent activity (and a failing "
        "streak this recent, a recent failure; a missed webhook, a missing one).",
    )
    idle_days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1)],
        help_text="Quieter than recent but with a sync within this many days: idle; "
        "quieter still: dormant.",
    )
    company_list_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="Minutes between readings of the company list, which is how polling finds "
        "new companies.",
    )
    companies_listed_at = models.DateTimeField(
        null=True, blank=True, help_text="When polling last read the company list."
    )
    ticked_at = models.DateTimeField(
        null=True, blank=True, help_text="When polling last picked the companies due."
    )

    class Meta:
        verbose_name = "polling schedule"
        verbose_name_plural = "polling schedule"

    def __str__(self) -> str:
        return "Polling schedule"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> PollingSchedule:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    def interval(self, tier: str) -> timedelta:
        return timedelta(minutes=getattr(self, f"{tier}_minutes"))
