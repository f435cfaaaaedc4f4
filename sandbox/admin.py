"""The sandbox's admin: its settings, its data, and the scripts that fix a retry's outcome.

All of it exists only while the sandbox is enabled (`SANDBOX_ENABLED`): a
deployment on the real Codat API sees none of these tables in its admin.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

from . import services
from .models import (
    Company,
    IdempotencyRecord,
    Item,
    RequestLog,
    RetryScript,
    SandboxSettings,
    Sync,
    WebhookConsumer,
    WebhookDelivery,
)


class SandboxAdmin(admin.ModelAdmin):
    """Off with the sandbox: absent from the index, and every page refused (403).

    Read on each request, like the sandbox's own endpoints, so turning the
    sandbox on or off needs no other change.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return settings.SANDBOX_ENABLED and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return settings.SANDBOX_ENABLED and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return settings.SANDBOX_ENABLED and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return settings.SANDBOX_ENABLED and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return settings.SANDBOX_ENABLED and super().has_delete_permission(request, obj)


@admin.register(SandboxSettings)
class SandboxSettingsAdmin(SandboxAdmin):
    list_display = [
        "__str__",
        "latency_ms",
        "error_rate",
        "rate_limit_storm_rate",
        "truncated_body_rate",
        "duplicate_webhook_rate",
        "out_of_order_webhooks",
        "webhook_drop_rate",
        "retry_repush",
        "idempotency_keys",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not SandboxSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Company)
class CompanyAdmin(SandboxAdmin):
    list_display = [
        "name",
        "company_id",
        "platform",
        "connection_status",
        "failure_mode",
        "last_sync_at",
    ]
    list_filter = ["platform", "failure_mode", "connection_status"]
    search_fields = ["name", "=company_id"]
    show_full_result_count = False


@admin.register(Sync)
class SyncAdmin(SandboxAdmin):
    list_display = [
        "sync_id",
        "company",
        "kind",
        "status_code",
        "finalized",
        "item_count",
        "started_at",
    ]
    list_filter = ["kind", "finalized", "status_code"]
    search_fields = ["=sync_id", "=company__company_id"]
    raw_id_fields = ["company"]
    show_full_result_count = False


@admin.register(Item)
class ItemAdmin(SandboxAdmin):
    list_display = ["transaction_id", "sync", "position", "status", "data_type"]
    list_filter = ["status"]
    search_fields = ["=transaction_id"]
    raw_id_fields = ["sync"]
    show_full_result_count = False


class TransactionIdsField(forms.Field):
    """Transaction IDs typed one a line (or separated by commas or spaces)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str] | None:
        text = str(value or "")
        return [part for part in re.split(r"[\s,]+", text) if part] or None


class RetryScriptForm(forms.ModelForm):
    fail_transaction_ids = TransactionIdsField(
        required=False,
        help_text="These transactions fail again; every other re-pushed item completes. "
        "Each must be a transaction the company pushed.",
    )

    class Meta:
        model = RetryScript
        fields = ["company", "complete", "fail_transaction_ids"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        # The same rules as `script_next_retry`, so every way in agrees.
        cleaned["complete"], cleaned["fail_transaction_ids"] = services.validate_script(
            cleaned.get("company"),
            complete=cleaned.get("complete"),
            fail_transaction_ids=cleaned.get("fail_transaction_ids"),
        )
        return cleaned


@admin.register(RetryScript)
class RetryScriptAdmin(SandboxAdmin):
    form = RetryScriptForm
    list_display = ["pk", "company", "describe", "created", "used_by", "used_at"]
    list_filter = [("used_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["company"]
    readonly_fields = ["created", "used_by", "used_at"]
    show_full_result_count = False

    @admin.display(description="outcome")
    def describe(self, obj: RetryScript) -> str:
        return obj.describe()

    def has_change_permission(self, request, obj=None):
        # A used script is the record of what a retry did; it no longer changes.
        if obj is not None and obj.used_at is not None:
            return False
        return super().has_change_permission(request, obj)


@admin.register(WebhookConsumer)
class WebhookConsumerAdmin(SandboxAdmin):
    list_display = ["url", "event_format", "enabled", "created"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(SandboxAdmin):
    list_display = [
        "msg_id",
        "consumer",
        "event_type",
        "attempts",
        "sends",
        "delivered_at",
        "failed",
        "last_status_code",
    ]
    list_filter = ["event_type", "failed"]
    raw_id_fields = ["sync"]
    show_full_result_count = False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(SandboxAdmin):
    list_display = ["key", "created", "completed", "response_status"]


@admin.register(RequestLog)
class RequestLogAdmin(SandboxAdmin):
    list_display = ["started_at", "method", "path", "status", "idempotency_key"]
    list_filter = ["method", "status"]
    show_full_result_count = False
