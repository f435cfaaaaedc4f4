from django.urls import path, re_path

from . import api

app_name = "sandbox"
C = "companies/<str:company_id>"
S = f"{C}/sync/expenses/syncs"

urlpatterns = [
    path("companies", api.list_companies, name="companies"),
    path(f"{C}", api.company_detail, name="company"),
    path(f"{C}/connections", api.list_connections, name="connections"),
    path(f"{C}/push", api.list_push_operations, name="push-operations"),
    path(f"{C}/sync/expenses/config", api.company_config, name="config"),
    path(
        f"{C}/sync/expenses/expense-transactions",
        api.create_expense_transactions,
        name="expense-transactions",
    ),
    path(f"{S}", api.initiate_sync, name="initiate-sync"),
    path(f"{S}/list/status", api.list_syncs, name="syncs"),
    path(f"{S}/latest/status", api.latest_sync, name="latest-sync"),
    path(f"{S}/lastSuccessful/status", api.last_successful_sync, name="last-successful-sync"),
    path(f"{S}/<str:sync_id>/status", api.sync_status, name="sync"),
    path(f"{S}/<str:sync_id>/transactions", api.list_transactions, name="transactions"),
    path(
        f"{S}/<str:sync_id>/transactions/<str:transaction_id>",
        api.get_transaction,
        name="transaction",
    ),
    re_path(r"^(?P<rest>.*)$", api.not_found),
]
