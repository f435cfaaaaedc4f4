from django.urls import path

from . import audit_views, bulk_views, problem_views, retry_views, views, webhooks

urlpatterns = [
    path("", views.summary, name="summary"),
    path("syncs/", views.history, name="sync-history"),
    path("syncs/export.csv", views.history_csv, name="sync-history-csv"),
    path("syncs/<uuid:sync_id>/", views.sync_detail, name="sync-detail"),
    path("companies/<uuid:company_id>/", views.company_detail, name="company-detail"),
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
    path("problems/", problem_views.problem_list, name="problem-list"),
    path("problems/export.csv", problem_views.problem_list_csv, name="problem-list-csv"),
    path("problems/<int:pk>/", problem_views.problem_detail, name="problem-detail"),
    path("problems/<int:pk>/assign/", problem_views.problem_assign, name="problem-assign"),
    path("problems/<int:pk>/note/", problem_views.problem_note, name="problem-note"),
    path("problems/<int:pk>/ticket/", problem_views.problem_ticket, name="problem-ticket"),
    path("problems/<int:pk>/ignore/", problem_views.problem_ignore, name="problem-ignore"),
    path("problems/<int:pk>/snooze/", problem_views.problem_snooze, name="problem-snooze"),
    path("problems/<int:pk>/reopen/", problem_views.problem_reopen, name="problem-reopen"),
    path("problems/<int:pk>/playbook/", problem_views.problem_playbook, name="problem-playbook"),
    path(
        "problems/<int:pk>/playbook/<int:version>/",
        problem_views.playbook_version,
        name="problem-playbook-version",
    ),
    path("problems/<int:pk>/merge/", problem_views.problem_merge, name="problem-merge"),
    path("audit/", audit_views.access_audit, name="access-audit"),
    path("preferences/", views.preferences, name="preferences"),
    path("webhooks/codat", webhooks.receive, name="webhook-codat"),
]
