"""Alert rules and channels (managed by leads), each rule's subjects' states, the
transitions between them (one row per change, recorded once), deliveries of
those transitions to channels, and mutes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models import Company, Problem

from . import crypto
from .vocabulary import (
    ChannelKind,
    Condition,
    DeliveryKind,
    DeliveryState,
    Digest,
    SubjectState,
    TransitionKind,
)


class Channel(models.Model):
    """Where alerts go. The destination URL (which may carry a token) and the
    signing secret are stored encrypted and never shown again after saving;
    `display` is what pages show (scheme and host only)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=ChannelKind.choices, default=ChannelKind.NOTIFY)
    url_encrypted = models.TextField(help_text="The destination URL, encrypted.")
    signing_secret_encrypted = models.TextField(
        blank=True, default="", help_text="Signed webhooks: the whsec_… secret, encrypted."
    )
    display = models.CharField(max_length=300, help_text="The destination without its secrets.")
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="The first failed attempt since its last success."
    )
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]
        permissions = [("manage_alerts", "Can manage alert rules and channels")]

    def __str__(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return crypto.decrypt(self.url_encrypted)

    @url.setter
    def url(self, value: str) -> None:
        self.url_encrypted = crypto.encrypt(value)

    @property
    def signing_secret(self) -> str:
        return crypto.decrypt(self.signing_secret_encrypted)

    @signing_secret.setter
    def signing_secret(self, value: str) -> None:
        self.signing_secret_encrypted = crypto.encrypt(value)


class Rule(models.Model):
    """One condition, its threshold, where it sends, and what it covers."""

    name = models.CharField(max_length=100)
    condition = models.CharField(max_length=30, choices=Condition.choices)
    threshold = models.PositiveIntegerField(
        null=True, blank=True, help_text="What it means depends on the condition."
    )
    min_syncs = models.PositiveIntegerField(
        default=10, help_text="Platform success rate: fewer syncs in the hour never fire."
    )
    hold_minutes = models.PositiveIntegerField(
        default=5,
        help_text="The condition must hold this long before it fires, and be gone this "
        "long before it recovers.",
    )
    channels = models.ManyToManyField(Channel, blank=True, related_name="rules")
    companies = models.ManyToManyField(
        Company, blank=True, related_name="+", help_text="None: every company."
    )
    platforms = models.JSONField(default=list, blank=True, help_text="[]: every platform.")
    digest = models.CharField(max_length=10, choices=Digest.choices, default="", blank=True)
    enabled = models.BooleanField(default=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_digest_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Mute(models.Model):
    """Silence: a rule, a company, or a problem (or a company or problem for one
    rule), until a time or until removed. Transitions are still recorded;
    only their delivery is held back."""

    rule = models.ForeignKey(
        Rule, on_delete=models.CASCADE, null=True, blank=True, related_name="mutes"
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    problem = models.ForeignKey(
        Problem, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    until = models.DateTimeField(null=True, blank=True, help_text="Empty: until removed.")
    reason = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rule__isnull=False)
                | models.Q(company__isnull=False)
                | models.Q(problem__isnull=False),
                name="alerts_mute_names_something",
            )
        ]

    def __str__(self) -> str:
        named = [str(part) for part in (self.rule, self.company, self.problem) if part]
        return "Mute: " + ", ".join(named)


class AlertState(models.Model):
    """One subject of one rule: `company:<uuid>`, `problem:<pk>`, `platform:<name>`
    or `system`. Rows exist only for subjects that are, or were lately, not OK."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    subject = models.CharField(max_length=200)
    label = models.CharField(max_length=500, blank=True, default="", help_text="Its name.")
    state = models.CharField(max_length=20, choices=SubjectState.choices, default=SubjectState.OK)
    since = models.DateTimeField(default=timezone.now, help_text="In this state since.")
    sequence = models.PositiveIntegerField(default=0, help_text="Transitions recorded so far.")
    detail = models.JSONField(
        default=dict, blank=True, help_text="The latest evaluation's figures."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "subject"], name="alerts_state_rule_subject")
        ]
        indexes = [models.Index(fields=["rule", "state"], name="alerts_state_rule_state")]

    def __str__(self) -> str:
        return f"{self.rule}: {self.label or self.subject} ({self.state})"


class Transition(models.Model):
    """A subject started firing or recovered: recorded exactly once (the unique
    sequence), delivered at least once to each channel, keyed by `key`."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, help_text="Receivers drop repeats.")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="transitions")
    subject = models.CharField(max_length=200)
    label = models.CharField(max_length=500, blank=True, default="")
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=TransitionKind.choices)
    at = models.DateTimeField(default=timezone.now)
    summary = models.CharField(max_length=500, help_text="What happened, in one line.")
    detail = models.JSONField(default=dict, blank=True, help_text="Counts and companies.")
    path = models.CharField(
        max_length=500, blank=True, default="", help_text="The page that shows it."
    )
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    problem = models.ForeignKey(
        Problem, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    muted = models.BooleanField(default=False, help_text="Recorded, not sent: a mute held it.")
    digested_at = models.DateTimeField(
        null=True, blank=True, help_text="Digest rules: when a summary carried it."
    )

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject", "sequence"], name="alerts_transition_once"
            )
        ]
        indexes = [models.Index(fields=["rule", "-at"], name="alerts_transition_rule_at")]

    def __str__(self) -> str:
        return self.summary


class Delivery(models.Model):
    """One message to one channel: a transition, a digest of several, or a test.
    Retried with backoff; the log leads read."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, help_text="The message's ID.")
    kind = models.CharField(max_length=20, choices=DeliveryKind.choices)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(
        Rule, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    transition = models.ForeignKey(
        Transition, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    title = models.CharField(max_length=500)
    body = models.TextField()
    payload = models.JSONField(default=dict, blank=True, help_text="The JSON a webhook receives.")
    state = models.CharField(
        max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["transition", "channel"],
                condition=models.Q(kind=DeliveryKind.TRANSITION),
                name="alerts_delivery_once_per_channel",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(state__in=["pending", "retrying", "sending"]),
                name="alerts_delivery_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.title} → {self.channel}"
