from django.contrib import admin

from .models import (
    Company,
    IdempotencyRecord,
    Item,
    RequestLog,
    SandboxSettings,
    Sync,
    WebhookConsumer,
    WebhookDelivery,
)


@admin.register(SandboxSettings)
class SandboxSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "latency_ms",
        "error_rate",
        "rate_limit_storm_rate",
        "truncated_body_rate",
        "duplicate_webhook_rate",
        "out_of_order_webhooks",
        "idempotency_keys",
    ]

    def has_add_permission(self, request):
        return not SandboxSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
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
class SyncAdmin(admin.ModelAdmin):
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
class ItemAdmin(admin.ModelAdmin):
    list_display = ["transaction_id", "sync", "position", "status", "data_type"]
    list_filter = ["status"]
    search_fields = ["=transaction_id"]
    raw_id_fields = ["sync"]
    show_full_result_count = False


@admin.register(WebhookConsumer)
class WebhookConsumerAdmin(admin.ModelAdmin):
    list_display = ["url", "event_format", "enabled", "created"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
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
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "created", "completed", "response_status"]


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = ["started_at", "method", "path", "status", "idempotency_key"]
    list_filter = ["method", "status"]
    show_full_result_count = False
