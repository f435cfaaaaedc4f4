"""The sandbox upstream's own tables.

They model what Codat holds for one client: companies with an accounting
connection, the syncs of their expense data, each sync's transaction
statuses, webhook consumers and deliveries, idempotency records and a request
log. The dashboard never reads these tables; it sees them only through the
HTTP API in `sandbox/api.py`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import ClassVar

from django.db import models
from django.utils import timezone


class Platform(models.TextChoices):
    XERO = "gbol", "Xero"
    QBO = "qhyg", "QuickBooks Online"
    QBD = "pqsw", "QuickBooks Desktop"
    NETSUITE = "akxx", "Oracle NetSuite"
    INTACCT = "knfz", "Sage Intacct"
    FREEAGENT = "fbrh", "FreeAgent"
    DYNAMICS = "trji", "Dynamics 365 Business Central"


class ItemStatus(models.IntegerChoices):
    UNKNOWN = 0, "Unknown"
    PENDING = 1, "Pending"
    VALIDATION_ERROR = 2, "ValidationError"
    COMPLETED = 3, "Completed"
    PUSH_ERROR = 4, "PushError"


class IntegrationType(models.IntegerChoices):
    EXPENSES = 0, "expenses"
    BANKFEEDS = 1, "bankfeeds"


class DataType(models.IntegerChoices):
    """Accounting data types that an expense sync writes, by transaction type."""

    DIRECT_COSTS = 0, "directCosts"
    DIRECT_INCOMES = 1, "directIncomes"
    BANK_TRANSACTIONS = 2, "bankTransactions"
    TRANSFERS = 3, "transfers"
    JOURNAL_ENTRIES = 4, "journalEntries"
    BILLS = 5, "bills"


class SyncKind(models.TextChoices):
    GENERATED = "generated", "Generated history"
    EXPENSES = "expenses", "Expense transactions created"
    RETRY = "retry", "Initiated (re-push)"


class RetryRepush(models.TextChoices):
    """What a retry (`POST …/syncs {"syncIds": […]}`) re-pushes of the syncs it names."""

    UNPUSHED = "unpushed", "Failed and pending items no later retry completed (lenient)"
    NAMED = "named", "Every failed or pending item of the named syncs (strict)"
    EVERYTHING = "everything", "Every item of the named syncs, completed ones too"


class SandboxSettings(models.Model):
    """One row: the sandbox's behaviour and the faults it injects.

    Editable in Django admin while the system runs; every API request reads it
    through a one-second cache.
    """

    latency_ms = models.PositiveIntegerField(default=0, help_text="Added to every API answer.")
    error_rate = models.FloatField(default=0.0, help_text="Share (0-1) of answers that are 5xx.")
    rate_limit_storm_rate = models.FloatField(
        default=0.0, help_text="Share (0-1) of answers that are 429, whatever the budget."
    )
    slow_body_ms = models.PositiveIntegerField(
        default=0, help_text="Pause between 4 KiB chunks of every body."
    )
    truncated_body_rate = models.FloatField(
        default=0.0, help_text="Share (0-1) of 200 answers whose JSON body is cut short."
    )
    duplicate_webhook_rate = models.FloatField(
        default=0.0, help_text="Share (0-1) of webhook deliveries sent twice."
    )
    out_of_order_webhooks = models.BooleanField(
        default=False, help_text="Delay deliveries at random so events arrive shuffled."
    )
    webhook_drop_rate = models.FloatField(
        default=0.0,
        help_text="Share (0-1) of webhook deliveries never sent (lost on the way); the sync's "
        "seed decides which, so a lost delivery is not retried either.",
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides SANDBOX_RATE_LIMIT_PER_MINUTE."
    )
    rate_limit_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides SANDBOX_RATE_LIMIT_PER_DAY."
    )
    quota_used_elsewhere = models.PositiveIntegerField(
        default=0,
        help_text="Requests of today's quota taken by another client of the same API key (the "
        "customer's own integration): X-Rate-Limit-Remaining reports that much less, and the "
        "quota runs out that much sooner.",
    )
    processing_seconds_min = models.PositiveIntegerField(default=3)
    processing_seconds_max = models.PositiveIntegerField(default=20)
    long_running_rate = models.FloatField(
        default=0.02, help_text="Share (0-1) of new syncs that run for over ten minutes (1010)."
    )
    retry_success_rate = models.FloatField(
        default=0.7, help_text="Chance (0-1) that a re-pushed failed item succeeds."
    )
    retry_repush = models.CharField(
        max_length=10,
        choices=RetryRepush.choices,
        default=RetryRepush.UNPUSHED,
        help_text="Which items of the named syncs a retry re-pushes. Codat documents "
        "'the failed and pending items of the syncs named': 'named' is that strict reading, "
        "'everything' a stricter upstream still.",
    )
    seed = models.BigIntegerField(default=20260101, help_text="Seeds every random outcome.")
    request_log_enabled = models.BooleanField(default=True)
    idempotency_keys = models.BooleanField(
        default=True,
        help_text="Honour Idempotency-Key. Off: every POST makes a new sync, as an upstream "
        "that does not promise idempotency may (the key is still logged).",
    )
    initiate_delay_ms = models.PositiveIntegerField(
        default=0,
        help_text="Added to the initiate-sync answer after the sync was created, so a client "
        "can lose the answer to a POST the upstream accepted.",
    )

    class Meta:
        verbose_name = "sandbox settings"
        verbose_name_plural = "sandbox settings"

    def __str__(self) -> str:
        return "Sandbox settings"

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)
        type(self)._cached = None

    _cached: ClassVar[tuple[float, SandboxSettings] | None] = None

    @classmethod
    def load(cls) -> SandboxSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj

    @classmethod
    def current(cls) -> SandboxSettings:
        """The settings as of at most a second ago (read on every API request)."""
        cached = cls._cached
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        obj = cls.load()
        cls._cached = (time.monotonic() + 1.0, obj)
        return obj


class Company(models.Model):
    company_id = models.UUIDField(unique=True, default=uuid.uuid4)
    name = models.CharField(max_length=200)
    description = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField()
    platform = models.CharField(max_length=4, choices=Platform.choices)
    connection_id = models.UUIDField(default=uuid.uuid4)
    source_id = models.UUIDField(default=uuid.uuid4)
    connection_status = models.CharField(max_length=20, default="Linked")
    # A standing problem that fails every sync of this company with one code
    # (4000, 4040, 4220 or 4260); 0 when the company is healthy.
    failure_mode = models.PositiveSmallIntegerField(default=0)
    config = models.JSONField(default=dict)
    config_modified = models.DateTimeField()
    last_sync_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "companies"
        indexes = [models.Index(fields=["name"], name="sandbox_company_name")]

    def __str__(self) -> str:
        return self.name


class Sync(models.Model):
    sync_id = models.UUIDField(unique=True, default=uuid.uuid4)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="syncs")
    kind = models.CharField(max_length=10, choices=SyncKind.choices)
    started_at = models.DateTimeField()
    # When processing ends; the API reports 1000/1010 until `finalized`.
    completes_at = models.DateTimeField()
    finalized = models.BooleanField(default=False)
    # When the sandbox brought the sync to its terminal state (its webhooks are queued then).
    finalized_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(default=1000)
    data_pushed = models.BooleanField(default=False)
    error_message = models.TextField(blank=True)
    exception_message = models.TextField(blank=True)
    item_count = models.PositiveIntegerField(default=0)
    # The syncs whose failed and pending items this one re-pushes.
    source_sync_ids = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["company", "started_at"], name="sandbox_sync_company_start"),
            models.Index(
                fields=["completes_at"],
                name="sandbox_sync_due",
                condition=models.Q(finalized=False),
            ),
        ]

    def __str__(self) -> str:
        return str(self.sync_id)


class Item(models.Model):
    """One transaction's status within one sync (the API's `Transaction`)."""

    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    transaction_id = models.UUIDField()
    integration_type = models.PositiveSmallIntegerField(choices=IntegrationType.choices)
    data_type = models.PositiveSmallIntegerField(choices=DataType.choices)
    status = models.PositiveSmallIntegerField(choices=ItemStatus.choices)
    # NULL, not "": the API omits `message` for items that have none.
    message = models.TextField(null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sync", "position"], name="sandbox_item_sync_position")
        ]
        indexes = [models.Index(fields=["transaction_id"], name="sandbox_item_transaction")]

    def __str__(self) -> str:
        return str(self.transaction_id)


class RetryScript(models.Model):
    """The scripted outcome of one coming retry, so a scenario ends the same way every time.

    Either `complete` (the first N re-pushed items, in push order, complete;
    the rest fail again) or `fail_transaction_ids` (these fail again, all
    others complete). The next retry sync of the company claims it when it is
    initiated (a company's own scripts first, then any-company ones, oldest
    first) and uses it when it finalises; a script is used once.
    """

    # NULL: the next retry of any company.
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.CASCADE, related_name="retry_scripts"
    )
    complete = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="How many of the re-pushed items complete, in push order; the rest fail again.",
    )
    # NULL, not []: the form not chosen. Canonical UUID strings.
    fail_transaction_ids = models.JSONField(
        null=True,
        blank=True,
        help_text="These transactions fail again; every other re-pushed item completes.",
    )
    created = models.DateTimeField(default=timezone.now)
    used_by = models.OneToOneField(
        Sync,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retry_script",
        help_text="The retry sync whose outcomes this script decided.",
    )
    # Set with `used_by` in the claim; it stays when that sync is deleted, so a
    # used script never applies again.
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["company", "created"],
                name="sandbox_script_waiting",
                condition=models.Q(used_at__isnull=True),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(complete__isnull=False, fail_transaction_ids__isnull=True)
                | models.Q(complete__isnull=True, fail_transaction_ids__isnull=False),
                name="sandbox_script_one_form",
            )
        ]

    def __str__(self) -> str:
        return f"Retry script {self.pk}: {self.describe()}"

    def describe(self) -> str:
        """What the script does, in the words the command and the admin use."""
        if self.complete is not None:
            return f"the first {self.complete} re-pushed item(s) complete, the rest fail again"
        ids = self.fail_transaction_ids or []
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return f"{len(ids)} transaction(s) fail again ({shown}), all others complete"

    def completions(self, transaction_ids: Sequence[uuid.UUID]) -> list[bool]:
        """Whether each re-pushed item completes, given the retry's items in push order."""
        if self.complete is not None:
            return [position < self.complete for position in range(len(transaction_ids))]
        failing = set(self.fail_transaction_ids or [])
        return [str(tid) not in failing for tid in transaction_ids]


class WebhookConsumer(models.Model):
    class Format(models.TextChoices):
        CURRENT = "current", "expenses.sync.successful / unsuccessful"
        LEGACY = "legacy", "SyncCompleted / SyncFailed"

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="whsec_… (Standard Webhooks)")
    event_format = models.CharField(max_length=10, choices=Format.choices, default=Format.CURRENT)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.url} ({self.event_format})"


class WebhookDelivery(models.Model):
    """One event for one consumer, delivered at least once."""

    msg_id = models.CharField(max_length=40, unique=True)
    consumer = models.ForeignKey(WebhookConsumer, on_delete=models.CASCADE)
    sync = models.ForeignKey(Sync, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    body = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    sends = models.PositiveIntegerField(default=0, help_text="POSTs made, duplicates included.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed = models.BooleanField(default=False)
    # Never sent: lost on the way (SandboxSettings.webhook_drop_rate).
    dropped = models.BooleanField(default=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="sandbox_delivery_due",
                condition=models.Q(delivered_at__isnull=True, failed=False),
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["consumer", "sync"], name="sandbox_delivery_once")
        ]

    def __str__(self) -> str:
        return self.msg_id


class IdempotencyRecord(models.Model):
    key = models.CharField(max_length=255, unique=True)
    request_hash = models.CharField(max_length=64)
    created = models.DateTimeField()
    completed = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.key


class RequestLog(models.Model):
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    company_id = models.UUIDField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["company_id", "started_at"], name="sandbox_log_company")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
