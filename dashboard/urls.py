from django.urls import path

from . import audit_views, bulk_views, item_views, retry_views, views, webhooks

urlpatterns = [
    path("", views.summary, name="summary"),
    path("syncs/", views.history, name="sync-history"),
    path("syncs/export.csv", views.history_csv, name="sync-history-csv"),
    path("syncs/<uuid:sync_id>/", views.sync_detail, name="sync-detail"),
    path("companies/<uuid:company_id>/", views.company_detail, name="company-detail"),
    path("items/search/", item_views.item_search, name="item-search"),
    path(
        "transactions/<uuid:transaction_id>/",
        views.transaction_detail,
        name="transaction-detail",
    ),
    path(
        "companies/<uuid:company_id>/config/<int:snapshot_id>.json",
        views.config_download,
        name="config-download",
    ),
    path("syncs/<uuid:sync_id>/retry/", retry_views.sync_retry, name="sync-retry"),
    path("retries/", retry_views.audit, name="retry-audit"),
    path("retries/<int:pk>/", retry_views.retry_detail, name="retry-detail"),
    path("retries/<int:pk>/cancel/", retry_views.retry_cancel, name="retry-cancel"),
    path("retries/bulk/", bulk_views.bulk_open, name="bulk-retry"),
    path("retries/bulk/<int:pk>/", bulk_views.bulk_detail, name="bulk-detail"),
    path("retries/bulk/<int:pk>/review/", bulk_views.bulk_review, name="bulk-review"),
    path("retries/bulk/<int:pk>/cancel/", bulk_views.bulk_cancel, name="bulk-cancel"),
    path("problems/<int:pk>/retry/", bulk_views.problem_retry, name="problem-retry"),
    path("audit/", audit_views.access_audit, name="access-audit"),
    path("preferences/", views.preferences, name="preferences"),
    path("webhooks/codat", webhooks.receive, name="webhook-codat"),
]
