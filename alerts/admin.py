"""Django admin for the alerts: rules, channels and mutes editable; what the
evaluator and the deliveries recorded (states, transitions, deliveries) read only.

A channel's URL and signing secret are written through the same form as the
pages' (`alerts.forms.ChannelForm`: write-only, checked against the network
guard) and never shown: the encrypted columns are not among the fields.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .forms import ChannelForm
from .models import AlertState, Channel, Delivery, Mute, Rule, Transition


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "condition", "threshold", "digest", "enabled", "snoozed_until"]
    list_filter = ["condition", "enabled", "digest"]
    search_fields = ["name"]
    filter_horizontal = ["channels"]
    # Thousands of companies: picked by ID, not from a list of them all.
    raw_id_fields = ["companies"]
    readonly_fields = [
        "created_by",
        "created_at",
        "updated_at",
        "last_evaluated_at",
        "last_digest_at",
    ]


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    # The form's write-only URL and secret; never the encrypted columns.
    fields = [
        "name",
        "kind",
        "url",
        "signing_secret",
        "enabled",
        "display",
        "created_by",
        "created_at",
        "updated_at",
        "last_success_at",
        "last_failure_at",
        "failing_since",
        "last_error",
    ]
    list_display = ["name", "kind", "display", "enabled", "last_success_at", "failing_since"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = [
        "display",
        "created_by",
        "created_at",
        "updated_at",
        "last_success_at",
        "last_failure_at",
        "failing_since",
        "last_error",
    ]

    def save_model(self, request: HttpRequest, obj: Channel, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin):
    list_display = ["__str__", "until", "reason", "created_by", "created_at"]
    raw_id_fields = ["company", "problem"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: Mute, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """What the evaluator and the deliveries recorded: history, not settings."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = ["rule", "subject", "label", "state", "since", "sequence"]
    list_filter = ["state"]
    list_select_related = ["rule"]


@admin.register(Transition)
class TransitionAdmin(ReadOnlyAdmin):
    list_display = ["at", "rule", "kind", "summary", "muted"]
    list_filter = ["kind", "muted"]
    list_select_related = ["rule"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel", "kind", "state", "attempts", "delivered_at"]
    list_filter = ["state", "kind"]
    list_select_related = ["channel"]
