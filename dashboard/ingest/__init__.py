"""Turning upstream records into mirror rows.

Every write is an upsert keyed by the upstream's IDs, done in bulk, with
duplicates inside a batch removed first, and skipped when nothing changed, so
running any of these twice, in any order or at the same time, leaves the same
rows. Only `dashboard.upstream` speaks HTTP; this package decides what to ask
for: a company refresh costs one request (its sync list) when nothing changed.

`refresh` runs the refreshes; `companies`, `syncs`, `items`, `push_operations`
(data types) and `configs` each write their own rows; `fetch` reads items from
the upstream and writes them in batches; `state` keeps the current state (each
transaction's latest push, what is outstanding, what resolved a sync) in the
transaction that wrote the items; `carried` turns a webhook's transactions
into a sync's items, reading only what the webhook lacks; `records` holds
what they share.
"""

from .companies import (
    CompanyPurged,
    ensure_company,
    purged_companies,
    refresh_companies,
    upsert_companies,
)
from .configs import config_digest, store_config
from .fetch import fetch_items
from .items import write_items_many
from .push_operations import apply_types, data_types, read_data_types, refresh_data_types
from .records import Stats, parse_time
from .refresh import companies_to_refresh, refresh_company, refresh_sync, update_streak
from .syncs import sync_category, upsert_syncs

__all__ = [
    "CompanyPurged",
    "Stats",
    "apply_types",
    "companies_to_refresh",
    "config_digest",
    "data_types",
    "ensure_company",
    "fetch_items",
    "parse_time",
    "purged_companies",
    "read_data_types",
    "refresh_companies",
    "refresh_company",
    "refresh_data_types",
    "refresh_sync",
    "store_config",
    "sync_category",
    "update_streak",
    "upsert_companies",
    "upsert_syncs",
    "write_items_many",
]
