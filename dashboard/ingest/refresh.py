"""The refreshes: a company's or one sync's syncs, items and config brought up to date."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from alerts import triggers

from .. import health_signals, polling
from ..models import Company, RefreshState, Sync
from ..problems import upkeep as problem_upkeep
from ..upstream import Upstream, UpstreamError
from ..vocabulary import Category, Code, Learned
from .carried import WebhookItem, sync_items
from .companies import ensure_company, refresh_companies, refuse_purged
from .configs import needs_config, store_config
from .fetch import ingest_items
from .records import Stats
from .syncs import upsert_syncs

# When nothing changed, the refresh state's "last success" is rewritten only
# this often, so an idle refresh writes (almost) nothing.
HEARTBEAT = timedelta(minutes=15)


def companies_to_refresh(client: Upstream) -> tuple[list[Company], int]:
    """Read the company list again; (the companies to refresh now, how many are paused).

    A company paused by a long rate-limit wait is left alone until its pause ends.
    """
    companies = refresh_companies(client)
    paused = set(
        RefreshState.objects.filter(paused_until__gt=timezone.now()).values_list(
            "company_id", flat=True
        )
    )
    return [c for c in companies if c.pk not in paused], len(paused)


def _state(company: Company) -> RefreshState:
    state, _ = RefreshState.objects.get_or_create(company=company)
    return state


def refresh_company(client: Upstream, company: Company, *, force: bool = False) -> Stats:
    """Bring one company's syncs and items up to date. One request if nothing changed.

    CompanyPurged if its data was erased since it was read (a task queued before).
    """
    refuse_purged(company.company_id)
    stats = Stats(companies=1)
    now = timezone.now()
    state = _state(company)
    company_id = str(company.company_id)
    try:
        records = client.list_syncs(company_id)
        stats.syncs_seen = len(records)
        # A company's first read brings its history: no lag is counted for it.
        learned_by = Learned.BACKFILL if state.last_success is None else Learned.POLL
        written, to_fetch = upsert_syncs(company, records, learned_by=learned_by)
        if force:
            to_fetch = list(Sync.objects.filter(company=company))
        stats.syncs_written = len(written)
        if to_fetch:
            full = {s.pk: s for s in Sync.objects.filter(pk__in=[s.pk for s in to_fetch])}
            ingest_items(client, company, [full[s.pk] for s in to_fetch], stats)
        if written or stats.items_written:
            update_streak(company)
        if force or needs_config(state, written, now):
            stats.configs_written += store_config(company, client.get_config(company_id))
    except UpstreamError as exc:
        _record_error(company, exc)
        raise
    # Syncs this poll found finished that their webhook should have announced.
    health_signals.note_polled(
        company=company, written=written, first_refresh=state.last_success is None
    )
    _record_success(state, stats, now)
    health_signals.refresh_succeeded()
    polling.retier(company, now=now)
    return stats


def refresh_sync(
    client: Upstream,
    company_id: str,
    sync_id: str,
    *,
    completed_at: datetime | None = None,
    carried: list[WebhookItem] | None = None,
    learned_by: int = Learned.POLL,
) -> Stats:
    """Refresh one sync (a webhook's target): its status and, if needed, its items.

    `carried`: the items its webhook listed. Once the upstream says the sync
    ended, they are its items: written from the webhook, with only what it
    lacks read (`carried.sync_items`), so a webhook costs one request (the
    sync's status) when the mirror knows its transactions. `learned_by`: how
    the mirror heard of the change (`Learned.WEBHOOK` for a webhook's refresh).
    """
    stats = Stats()
    company = ensure_company(client, company_id)
    state = _state(company)
    try:
        record = client.get_sync(company_id, sync_id)
        written, to_fetch = upsert_syncs(
            company, [record], completed_at=completed_at, learned_by=learned_by
        )
        stats.syncs_seen, stats.syncs_written = 1, len(written)
        if to_fetch:
            full = list(Sync.objects.filter(pk__in=[s.pk for s in to_fetch]))
            items = None
            if carried is not None and len(full) == 1 and full[0].is_terminal:
                items = sync_items(client, company, full[0], carried)
            ingest_items(client, company, full, stats, items)
        if written or stats.items_written:
            update_streak(company)
        if needs_config(state, written, timezone.now()) and any(
            s.status_code == Code.CONFIGURATION_ERROR for s in written
        ):
            stats.configs_written += store_config(company, client.get_config(company_id))
    except UpstreamError as exc:
        _record_error(company, exc)
        raise
    _clear_error(state)
    polling.retier(company)
    return stats


STREAK_WINDOW = 1000


def update_streak(company: Company) -> None:
    """Count the failed attempts in a row since the company's last success, and note the
    start of its newest sync and of its newest successful one (the companies index's
    "last sync" and "last success").

    An attempt is a retry chain (an original and its retries), at the
    original's place, counted as its chain category: a retry that fails again
    does not lengthen the streak, and a chain that ended resolved ends it.
    """
    _update_last_syncs(company)
    streak, since = 0, None
    recent = (
        Sync.objects.filter(company=company, retry_of__isnull=True)
        .order_by("-sync_utc", "-id")
        .values_list("chain_category", "category", "sync_utc")[:STREAK_WINDOW]
    )
    for chain, own, started in recent:
        category = own if chain is None else chain
        if category == Category.IN_PROGRESS:
            continue
        if category != Category.FAILED:
            break
        streak, since = streak + 1, started
    if (company.failing_streak, company.failing_since) != (streak, since):
        Company.objects.filter(pk=company.pk).update(failing_streak=streak, failing_since=since)
        company.failing_streak, company.failing_since = streak, since
        triggers.changed(triggers.STREAK)
    # Its failed syncs without items are outstanding while the streak lasts.
    problem_upkeep.recount_locked([company.pk])


def _update_last_syncs(company: Company) -> None:
    """Read again, never worked out from what was written: a sync's category changes when
    its items are read, and a success may turn out failed. Two probes of
    `sync_company_time`, newest first."""
    syncs = Sync.objects.filter(company=company).order_by("-sync_utc")
    last_sync = syncs.values_list("sync_utc", flat=True).first()
    last_success = (
        syncs.filter(category=Category.SUCCESS).values_list("sync_utc", flat=True).first()
    )
    if (company.last_sync_at, company.last_success_at) != (last_sync, last_success):
        Company.objects.filter(pk=company.pk).update(
            last_sync_at=last_sync, last_success_at=last_success
        )
        company.last_sync_at, company.last_success_at = last_sync, last_success


def _record_success(state: RefreshState, stats: Stats, now: datetime) -> None:
    wrote = stats.syncs_written or stats.items_written or stats.items_deleted
    if (
        wrote
        or state.last_error
        or state.paused_until
        or state.last_success is None
        or state.last_success < now - HEARTBEAT
    ):
        RefreshState.objects.filter(pk=state.pk).update(
            last_success=now, last_error="", last_error_at=None, paused_until=None
        )


def _clear_error(state: RefreshState) -> None:
    """The upstream answered for this company: its recorded error and pause are over.

    Not a full refresh, so `last_success` (the company's last whole refresh) stays.
    """
    if state.last_error or state.paused_until:
        RefreshState.objects.filter(pk=state.pk).update(
            last_error="", last_error_at=None, paused_until=None
        )


def _record_error(company: Company, exc: UpstreamError) -> None:
    now = timezone.now()
    values: dict[str, Any] = {"last_error": str(exc)[:2000], "last_error_at": now}
    if exc.retry_after:
        values["paused_until"] = now + timedelta(seconds=exc.retry_after)
    RefreshState.objects.update_or_create(company=company, defaults=values)
