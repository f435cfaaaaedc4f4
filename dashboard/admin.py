"""Django admin for the mirror and the audits.

The mirror is read-only here, rows included: the upstream owns them, and a
row deleted by hand would come back at the next refresh, or take its syncs,
items and retry history with it. The dashboard's internal tables (the rollup,
the rankings, the hours waiting for the rollup) are derived and rebuilt by
their tasks: they are kept off the index, and a superuser can still read them
at their addresses (/admin/dashboard/syncrollup/, rankingsnapshot/,
rollupdirty/). The audit logs can be read, never changed.
"""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from .models import (
    AccessEvent,
    BulkRetry,
    Company,
    ConfigSnapshot,
    PlaybookVersion,
    PollingSchedule,
    Problem,
    ProblemActivity,
    ProblemAlias,
    PurgeRecord,
    PushItem,
    RankingSnapshot,
    RefreshState,
    RetryRequest,
    RollupDirty,
    Sync,
    SyncRollup,
    TransactionState,
    UserPreference,
    WebhookEvent,
)
from .polling import overview as polling_overview
from .polling import schedule_changed
from .retention import request_purge
from .tasks import purge_company_task
from .vocabulary import BulkState, PollTier, PurgeReason


class CappedPaginator(Paginator):
    """Counts at most COUNT_CAP rows: a changelist of a million rows stays fast."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):
            return rows.order_by().values("pk")[: self.COUNT_CAP].count()
        return len(rows)


class ReadOnlyAdmin(admin.ModelAdmin):
    """The mirror is written by ingestion only; admins read it here.

    No add, no change, no delete (so no *Delete selected* action either), for
    superusers too: their model permissions are all granted, so only these
    methods can take them away.
    """

    show_full_result_count = False
    paginator = CappedPaginator

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class InternalAdmin(ReadOnlyAdmin):
    """A table the dashboard derives for itself: off the admin's index, readable by address."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False


class PurgeForm(forms.Form):
    reason = forms.ChoiceField(choices=PurgeReason.choices)


@admin.register(Company)
class CompanyAdmin(ReadOnlyAdmin):
    list_display = (
        "name", "company_id", "platform_name", "connection_status", "poll_tier", "poll_due",
        "first_seen",
    )  # fmt: skip
    list_filter = ("poll_tier", "platform_name", "connection_status")
    search_fields = ("=company_id", "name")
    actions = ["purge"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A plain delete would leave its webhook events and no record, and the
        # next poll would mirror it again: companies are erased by the purge.
        return False

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("dashboard.purge_company")

    @admin.action(permissions=["purge"], description="Erase the selected companies' data")
    def purge(self, request: HttpRequest, queryset: QuerySet[Company]) -> HttpResponse | None:
        """Ask which reason and confirm, listing what goes; then queue one purge per company."""
        form = PurgeForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_valid():
            for company_id in queryset.values_list("company_id", flat=True):
                record, _ = request_purge(
                    company_id=company_id,
                    requested_by=request.user.get_username(),
                    reason=form.cleaned_data["reason"],
                )
                transaction.on_commit(partial(purge_company_task.delay, record.pk))
            self.message_user(
                request,
                f"Erasing {queryset.count()} companies' data. Each one's purge record "
                "(Purge records) says when it finished.",
                messages.SUCCESS,
            )
            return None
        sizes = {
            row["company_id"]: row
            for row in Sync.objects.filter(company__in=queryset)
            .values("company_id")
            .annotate(syncs=Count("*"), pushed=Sum("items_total"))
            .order_by()
        }
        rows = [
            (
                company,
                sizes.get(company.pk, {}).get("syncs", 0),
                sizes.get(company.pk, {}).get("pushed") or 0,
            )
            for company in queryset.order_by("name")
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase these companies' data?",
            "opts": self.model._meta,
            "rows": rows,
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/dashboard/company/purge_confirmation.html", context)


@admin.register(RefreshState)
class RefreshStateAdmin(admin.ModelAdmin):
    """How the refreshes of each company went. One field is the admin's to change:
    *paused until*, to lift (or set) a pause after the upstream's rate limit. The
    rest is the refreshes' record, and the row itself belongs to its company."""

    list_display = ("company", "last_success", "last_error_at", "paused_until")
    list_filter = ("paused_until",)
    search_fields = ("=company__company_id", "company__name")
    readonly_fields = (
        "company", "last_success", "last_error", "last_error_at", "config_fetched_at",
        "push_fetched_at",
    )  # fmt: skip
    list_select_related = ("company",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Sync)
class SyncAdmin(ReadOnlyAdmin):
    list_display = (
        "sync_id", "company", "status_code", "category", "sync_utc", "items_failed",
        "items_outstanding", "resolved_at",
    )  # fmt: skip
    list_filter = ("category", "status_code", "company__platform_name")
    search_fields = ("=sync_id", "=company__company_id")
    date_hierarchy = "sync_utc"
    list_select_related = ("company",)
    raw_id_fields = ("company", "retry_of")


@admin.register(SyncRollup)
class SyncRollupAdmin(InternalAdmin):
    """Derived from the syncs; rebuilt by the rollup task, never edited."""

    list_display = ("hour", "status_code", "category", "syncs", "items_completed", "items_failed")
    list_filter = ("category", "status_code")
    date_hierarchy = "hour"
    ordering = ("-hour", "status_code")


@admin.register(RankingSnapshot)
class RankingSnapshotAdmin(InternalAdmin):
    """Counted by the rankings task every minute, never edited."""

    list_display = ("range_key", "computed_at", "window_start", "window_end")
    ordering = ("range_key",)


@admin.register(RollupDirty)
class RollupDirtyAdmin(InternalAdmin):
    """Hours waiting for the rollup task; the dashboard reads them from the syncs meanwhile."""

    list_display = ("hour", "id")
    ordering = ("-hour",)


@admin.register(PushItem)
class PushItemAdmin(ReadOnlyAdmin):
    list_display = ("transaction_id", "sync", "data_type", "status", "integration_type")
    list_filter = ("status", "integration_type")
    search_fields = ("=transaction_id", "=sync__sync_id")
    raw_id_fields = ("sync",)


@admin.register(TransactionState)
class TransactionStateAdmin(ReadOnlyAdmin):
    """The current state ingest keeps (read-only: `build_current_state` rebuilds it)."""

    list_display = ("transaction_id", "company", "status", "outstanding", "last_sync_utc")
    list_filter = ("outstanding",)
    search_fields = ("=transaction_id", "=company__company_id")
    list_select_related = ("company",)
    raw_id_fields = ("company", "last_sync")


@admin.register(ConfigSnapshot)
class ConfigSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("company", "fetched_at", "digest")
    search_fields = ("=company__company_id", "company__name")
    date_hierarchy = "fetched_at"
    list_select_related = ("company",)
    raw_id_fields = ("company",)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("delivery_id", "event_type", "received_at", "processed_at", "sync_id")
    list_filter = ("event_type",)
    search_fields = ("=delivery_id", "=sync_id", "=company_id")
    date_hierarchy = "received_at"


class AuditAdmin(admin.ModelAdmin):
    """The audit log: readable, never editable or deletable, not even by superusers."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RetryRequest)
class RetryRequestAdmin(AuditAdmin):
    list_display = ("pk", "created_at", "user", "company", "sync", "state", "new_sync_id", "bulk")
    list_filter = ("state", "created_at")
    search_fields = ("=key", "=sync__sync_id", "=company__company_id", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("user", "company", "sync", "bulk")
    raw_id_fields = ("sync", "company", "bulk", "user")


@admin.register(BulkRetry)
class BulkRetryAdmin(AuditAdmin):
    list_display = ("pk", "created_at", "user", "description", "state", "planned_syncs")
    list_filter = ("state",)
    search_fields = ("=key", "user__username", "description")
    date_hierarchy = "created_at"
    list_select_related = ("user",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BulkRetry]:
        # Previews never confirmed retried nothing; the follow-up deletes them.
        return super().get_queryset(request).exclude(state=BulkState.DRAFT)


@admin.register(AccessEvent)
class AccessEventAdmin(AuditAdmin):
    """The access audit; leads read it on the site (/audit/), admins here too.
    Old rows leave by age only (`dashboard.audit.prune`)."""

    list_display = ("at", "action", "username", "client_ip", "company_name", "path")
    list_filter = ("action",)
    search_fields = ("=username", "=company_id")
    paginator = CappedPaginator
    ordering = ("-at", "-id")


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "use_local_time", "time_zone")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


@admin.register(PurgeRecord)
class PurgeRecordAdmin(AuditAdmin):
    """That a company's data was erased, by whom and when: kept, never changed."""

    list_display = ("company_id", "reason", "requested_by", "requested_at", "finished_at")
    list_filter = ("reason",)
    search_fields = ("=company_id", "requested_by")
    date_hierarchy = "requested_at"
    readonly_fields = (
        "company_id", "reason", "requested_by", "requested_at", "finished_at", "removed",
    )  # fmt: skip


class ProblemAliasInline(admin.TabularInline):
    model = ProblemAlias
    fields = ("status_code", "data_type", "fingerprint", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Problem)
class ProblemAdmin(ReadOnlyAdmin):
    """Problems, as ingest counts them. People change them on the site (/problems/), where
    each change is recorded with who and when; here they are read."""

    list_display = (
        "pk",
        "status_code",
        "data_type",
        "cause",
        "state",
        "companies_outstanding",
        "items_outstanding",
        "assignee",
        "last_seen",
    )
    list_filter = ("state", "status_code")
    search_fields = ("cause", "=aliases__fingerprint")
    ordering = ("-companies_outstanding", "-items_outstanding", "pk")
    list_select_related = ("assignee",)
    raw_id_fields = ("assignee", "merged_into")
    inlines = [ProblemAliasInline]


@admin.register(ProblemActivity)
class ProblemActivityAdmin(AuditAdmin):
    """What people (and the mirror) did to each problem."""

    list_display = ("at", "problem", "event", "username", "text")
    list_filter = ("event",)
    search_fields = ("=problem__id", "=username")
    ordering = ("-at", "-id")
    paginator = CappedPaginator
    raw_id_fields = ("problem", "user")


@admin.register(PlaybookVersion)
class PlaybookVersionAdmin(AuditAdmin):
    list_display = ("problem", "version", "edited_by", "edited_at")
    search_fields = ("=problem__id", "=edited_by")
    raw_id_fields = ("problem",)


@admin.register(PollingSchedule)
class PollingScheduleAdmin(admin.ModelAdmin):
    """Adaptive polling's schedule (one row): each tier's interval and polling's share of the
    request budget. Saving it takes effect at the next tick; a shortened interval brings
    forward the polls already scheduled. Each company's tier and next poll are on its row
    (Companies), filterable by tier."""

    list_display = ("__str__", "share", "running_minutes", "recent_minutes", "idle_minutes")
    readonly_fields = ("now", "companies_listed_at", "ticked_at")
    fieldsets = (
        (None, {"fields": ("now", "share")}),
        (
            "Minutes between polls, by tier",
            {
                "fields": tuple(f"{tier}_minutes" for tier in PollTier.values),
            },
        ),
        ("What makes a tier", {"fields": ("recent_hours", "idle_days")}),
        ("New companies", {"fields": ("company_list_minutes", "companies_listed_at")}),
        ("The poller", {"fields": ("ticked_at",)}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not PollingSchedule.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Polling now")
    def now(self, obj: PollingSchedule) -> str:
        if obj.pk is None:
            return "-"
        seen = polling_overview(obj)
        quota = (
            f"; the upstream reports {seen.quota[0]:,} of {seen.quota[1]:,} requests left today"
            if seen.quota
            else ""
        )
        tiers = ", ".join(
            f"{label}: {n:,} (every {minutes} min)" for label, n, minutes in seen.tiers
        )
        return (
            f"May take {seen.allowance:,} of the {seen.per_window:,} requests per "
            f"{seen.window:g} s; {seen.used:,} taken in the current window{quota}. "
            f"Companies due now: {seen.overdue:,}. By tier: {tiers}."
        )

    def save_model(self, request: HttpRequest, obj: PollingSchedule, form, change: bool) -> None:
        before = PollingSchedule.objects.filter(pk=obj.pk).first() if obj.pk else None
        super().save_model(request, obj, form, change)
        schedule_changed(before, obj)
