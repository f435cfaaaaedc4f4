"""The alerts' named meanings: conditions, subject states, transitions, deliveries."""

from __future__ import annotations

from django.db import models


class Condition(models.TextChoices):
    """What a rule watches. `THRESHOLD` below says what its number means."""

    PROBLEM_NEW = "problem_new", "A new problem"
    PROBLEM_REGRESSED = "problem_regressed", "A problem regressed"
    PROBLEM_COMPANIES = "problem_companies", "A problem reaches N companies"
    STREAK = "streak", "A company's failing streak reaches N"
    LONG_RUNNING = "long_running", "A sync running (1010) for more than N minutes"
    PLATFORM_SUCCESS = "platform_success", "A platform's success rate in the last hour below N%"
    COMPANY_DISCONNECTED = (
        "company_disconnected",
        "A company de-authorised (4040, 4220) or its billing expired (4260)",
    )
    NO_REFRESH = "no_refresh", "No successful refresh for N minutes"
    UPSTREAM_DOWN = "upstream_down", "The upstream unreachable or rate-limiting us for N minutes"
    WEBHOOKS_MISSING = "webhooks_missing", "Webhooks not arriving"


# The threshold's meaning and default for each condition (None: it takes none).
THRESHOLD: dict[str, tuple[str, int] | None] = {
    Condition.PROBLEM_NEW: None,
    Condition.PROBLEM_REGRESSED: None,
    Condition.PROBLEM_COMPANIES: ("companies", 5),
    Condition.STREAK: ("failed syncs in a row", 3),
    Condition.LONG_RUNNING: ("minutes", 60),
    Condition.PLATFORM_SUCCESS: ("% success", 80),
    Condition.COMPANY_DISCONNECTED: None,
    Condition.NO_REFRESH: ("minutes", 30),
    Condition.UPSTREAM_DOWN: ("minutes", 10),
    Condition.WEBHOOKS_MISSING: ("missed webhooks in the last hour", 5),
}


class SubjectState(models.TextChoices):
    """Where one subject of a rule stands (a company, a problem, a platform, or the
    whole system). A condition must hold for the rule's hold time before it
    fires, and be gone that long before it recovers."""

    OK = "ok", "OK"
    PENDING = "pending", "Starting"
    FIRING = "firing", "Firing"
    RECOVERING = "recovering", "Recovering"


class TransitionKind(models.TextChoices):
    FIRED = "fired", "Started"
    RECOVERED = "recovered", "Recovered"


class Digest(models.TextChoices):
    """Send each transition at once, or a summary of them every hour or day."""

    IMMEDIATE = "", "Each change at once"
    HOURLY = "hourly", "Hourly summary"
    DAILY = "daily", "Daily summary"


class ChannelKind(models.TextChoices):
    """How a channel is reached: any notification URL (e-mail, Slack, Teams, Discord,
    PagerDuty, JSON webhooks, …) or our own signed webhook (Standard Webhooks)."""

    NOTIFY = "notify", "Notification URL"
    SIGNED_WEBHOOK = "signed_webhook", "Signed webhook"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    RETRYING = "retrying", "Retrying"
    FAILED = "failed", "Failed"


class DeliveryKind(models.TextChoices):
    TRANSITION = "transition", "State change"
    DIGEST = "digest", "Summary"
    TEST = "test", "Test"
