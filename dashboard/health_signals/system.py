"""The last successful refresh and the upstream's trouble: one row, every process's.

Both are fed from hot paths (every upstream call, every company refresh), so
each process remembers what it last recorded and touches the row only when
its view changes, or once a minute to re-assert it (another process may
have recorded the opposite meanwhile). The writes are conditional updates:
processes that see the same change at once change the row once, and the one
that changed it tells the alerts. A write waits for the caller's transaction
to commit, so the one row is never locked for the length of someone's work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from alerts.triggers import REFRESH, UPSTREAM

from ..vocabulary import UpstreamTrouble
from . import announce

if TYPE_CHECKING:
    from ..models import SystemHealth

log = logging.getLogger(__name__)

ROW = 1
# How often a process re-asserts a view it has already recorded.
REASSERT = timedelta(minutes=1)
# The last refresh is kept to the minute: finer would write on every refresh.
REFRESH_RESOLUTION = timedelta(minutes=1)


@dataclass
class _Memo:
    """What this process last recorded, and when. Threads share it; a race
    costs at most a second conditional update that changes nothing."""

    value: str | None = None
    at: datetime | None = None


_upstream = _Memo()
_refresh = _Memo()


def forget() -> None:
    """Drop this process's memory of what it recorded (a test starts afresh)."""
    global _upstream, _refresh
    _upstream, _refresh = _Memo(), _Memo()


# --- recording ---


def refresh_succeeded(*, now: datetime | None = None) -> None:
    """A company refresh succeeded."""
    now = now or timezone.now()
    if _refresh.at is not None and now - _refresh.at < REFRESH_RESOLUTION:
        return
    _refresh.at = now
    _after_commit(partial(_record_refresh, now))


def upstream_answered(*, now: datetime | None = None) -> None:
    """The upstream answered (a 4xx is an answer too): any trouble is over."""
    _note_upstream(None, now or timezone.now())


def upstream_failed(kind: UpstreamTrouble, *, now: datetime | None = None) -> None:
    """A call failed after the client's own retries, for want of an answer or by a 429."""
    _note_upstream(kind, now or timezone.now())


def _note_upstream(kind: UpstreamTrouble | None, now: datetime) -> None:
    value = None if kind is None else str(kind)
    if _upstream.at is not None and _upstream.value == value and now - _upstream.at < REASSERT:
        return
    _upstream.value, _upstream.at = value, now
    _after_commit(partial(_record_upstream, value, now))


def _after_commit(record: Callable[[], None]) -> None:
    # Never raises: a signal must not fail the request or the refresh that reported
    # it (even asking whether a transaction is open needs a database connection).
    try:
        transaction.on_commit(record)
    except Exception:
        log.warning("could not record a health signal", exc_info=True)


def _record_refresh(now: datetime) -> None:
    moved = _update(
        Q(last_refresh_at__isnull=True) | Q(last_refresh_at__lt=now - REFRESH_RESOLUTION),
        last_refresh_at=now,
    )
    if moved:
        announce.changed(REFRESH)


def _record_upstream(kind: str | None, now: datetime) -> None:
    if kind is None:
        moved = _update(
            Q(upstream_trouble_since__isnull=False),
            upstream_trouble_since=None,
            upstream_trouble_kind="",
        )
    else:
        # The trouble goes on if only its kind changes: it started when it started.
        moved = _update(
            Q(upstream_trouble_since__isnull=True) | ~Q(upstream_trouble_kind=kind),
            upstream_trouble_since=Coalesce(
                F("upstream_trouble_since"), Value(now, output_field=DateTimeField())
            ),
            upstream_trouble_kind=kind,
        )
    if moved:
        announce.changed(UPSTREAM)


def _update(condition: Q, **values: Any) -> bool:
    """Change the row where `condition` holds; whether it changed. Never raises (as above)."""
    # Imported late, as below: the upstream client imports this module.
    from ..models import SystemHealth

    try:
        if SystemHealth.objects.filter(condition, pk=ROW).update(**values):
            return True
        # Nothing to change, or no row yet (a new install, an emptied table).
        _, created = SystemHealth.objects.get_or_create(pk=ROW)
        return created and bool(SystemHealth.objects.filter(condition, pk=ROW).update(**values))
    except Exception:
        log.warning("could not record a health signal", exc_info=True)
        return False


# --- reading ---


def system_health() -> SystemHealth | None:
    """The one row, or None before anything was recorded."""
    from ..models import SystemHealth

    return SystemHealth.objects.filter(pk=ROW).first()


def last_refresh_success() -> datetime | None:
    """When a company refresh last succeeded (to the minute); None: never, as far as known."""
    row = system_health()
    return row.last_refresh_at if row else None


def upstream_trouble() -> tuple[datetime, UpstreamTrouble] | None:
    """(since when, which kind) while the upstream is unreachable or rate limiting us."""
    row = system_health()
    if row is None or row.upstream_trouble_since is None:
        return None
    return row.upstream_trouble_since, UpstreamTrouble(row.upstream_trouble_kind)
