"""The dashboard's rankings: the companies with most failed syncs, and the most frequent errors.

Both aggregate every failed sync of a range: tens of thousands of rows for a
month of a large estate, where the totals come from the hourly rollup in a
few milliseconds. So beat recounts them every minute for each preset range
into `RankingSnapshot`, and the dashboard shows a snapshot with the time it
was counted. Custom ranges, a platform filter, and a snapshot older than
`MAX_AGE` (beat stopped) are counted live, by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Max, QuerySet
from django.utils import timezone

from .db.capped import COUNT_CAP, bounded_count
from .db.locks import advisory_lock
from .filters import PRESETS
from .fingerprint import BOUND, normalise
from .models import Company, RankingSnapshot, Sync
from .vocabulary import Category, Code

TOP = 10
# Any constant: the advisory lock that keeps two refreshes from overlapping.
LOCK_KEY = 0x5F11C4EA2
# Beat recounts every minute; past this age a snapshot is not shown.
MAX_AGE = timedelta(minutes=5)


@dataclass
class Rankings:
    # {"company": {pk, company_id, name, platform_name}, "failed": n, "last": datetime},
    # most failed first.
    failing_companies: list[dict[str, Any]]
    # {"fingerprint", "count", "companies", "message", "example"}, most frequent first:
    # the message is the group's cause, its variable parts named; the example
    # is one of its messages as it came (a snapshot counted before it has none).
    errors: list[dict[str, Any]]
    # When the counting happened: now for a live count, else the snapshot's time.
    counted_at: datetime
    # Whatever the range, as the counting found them: the longest failing
    # streaks {company_id, name, failing_streak, failing_since}, and the
    # long-running syncs {sync_id, sync_utc, company: {name}}, oldest first.
    streaks: list[dict[str, Any]] = field(default_factory=list)
    long_running: list[dict[str, Any]] = field(default_factory=list)
    long_running_count: int = 0
    from_snapshot: bool = False


def _current() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(the longest failing streaks, the oldest long-running syncs, how many run long)."""
    streaks: list[dict[str, Any]] = [
        dict(row)
        for row in Company.objects.filter(failing_streak__gt=0)
        .order_by("-failing_streak", "name")
        .values("company_id", "name", "failing_streak", "failing_since")[:TOP]
    ]
    long_running = Sync.objects.filter(status_code=Code.LONG_RUNNING)
    oldest = [
        {"sync_id": row["sync_id"], "sync_utc": row["sync_utc"], "company": {"name": row["name"]}}
        for row in long_running.order_by("sync_utc").values(
            "sync_id", "sync_utc", name=F("company__name")
        )[:TOP]
    ]
    running = len(oldest)
    if running == TOP:
        n, capped = bounded_count(long_running)
        running = COUNT_CAP + 1 if capped else n
    return streaks, oldest, running


def count(
    syncs: QuerySet[Sync],
    current: tuple[list[dict[str, Any]], list[dict[str, Any]], int] | None = None,
) -> Rankings:
    """Rank the failures among a queryset of syncs (a range and its filters, unordered).

    Failing companies count retry chains: an original and its retries are one
    attempt, at the original's place, whose result is its last retry (so a
    retry that fails again adds nothing, and a chain that ended resolved is a
    success). The error groups count every failed sync, retries included.
    `current` is what `_current` returned, when the caller read it already.
    """
    streaks, oldest, running = current or _current()
    failed = syncs.filter(category=Category.FAILED)
    chains = syncs.filter(chain_category=Category.FAILED)
    top = list(
        chains.values("company_id")
        .annotate(n=Count("*"), last=Max("sync_utc"))
        .order_by("-n", "-last")[:TOP]
    )
    groups = list(
        failed.exclude(error_fingerprint="")
        .values("error_fingerprint")
        .annotate(
            n=Count("*"),
            companies=Count("company_id", distinct=True),
            # An example of the group: its last mirrored sync (the index holds ids).
            example=Max("id"),
        )
        .order_by("-n", "error_fingerprint")[:TOP]
    )
    # The fingerprint is of the error message, or of the exception message without one.
    examples = {
        key: error or exception
        for key, error, exception in Sync.objects.filter(
            pk__in=[row["example"] for row in groups]
        ).values_list("error_fingerprint", "error_message", "exception_message")
    }
    companies = {
        row["pk"]: row
        for row in Company.objects.filter(pk__in=[row["company_id"] for row in top]).values(
            "pk", "company_id", "name", "platform_name"
        )
    }
    return Rankings(
        failing_companies=[
            {"company": companies[row["company_id"]], "failed": row["n"], "last": row["last"]}
            for row in top
            if row["company_id"] in companies
        ],
        errors=[
            {
                "fingerprint": row["error_fingerprint"],
                "count": row["n"],
                "companies": row["companies"],
                "message": normalise(examples.get(row["error_fingerprint"], "")),
                "example": examples.get(row["error_fingerprint"], "")[:BOUND],
            }
            for row in groups
        ],
        counted_at=timezone.now(),
        streaks=streaks,
        long_running=oldest,
        long_running_count=running,
    )


def between(start: datetime | None, end: datetime) -> QuerySet[Sync]:
    syncs = Sync.objects.filter(sync_utc__lt=end)
    if start is not None:
        syncs = syncs.filter(sync_utc__gte=start)
    return syncs.order_by()


def refresh(now: datetime | None = None) -> int:
    """Recount the rankings of every preset range, ending now; returns how many.

    One refresh at a time: a second one, started while the first still runs
    (a slow database, a backlog of beat's ticks), finds the lock taken and
    does nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if not advisory_lock(LOCK_KEY, wait=False):
            return 0
        return _recount(now)


def _recount(now: datetime) -> int:
    current = _current()  # the same for every range
    for key, (_label, span) in PRESETS.items():
        start = now - span if span else None
        ranked = count(between(start, now), current)
        RankingSnapshot.objects.update_or_create(
            range_key=key,
            defaults={
                "computed_at": now,
                "window_start": start,
                "window_end": now,
                "failing_companies": [
                    {
                        **row,
                        "company": {
                            **row["company"],
                            "company_id": str(row["company"]["company_id"]),
                        },
                        "last": _iso(row["last"]),
                    }
                    for row in ranked.failing_companies
                ],
                "errors": ranked.errors,
                "streaks": [
                    {
                        **row,
                        "company_id": str(row["company_id"]),
                        "failing_since": _iso(row["failing_since"]),
                    }
                    for row in ranked.streaks
                ],
                "long_running": [
                    {**row, "sync_id": str(row["sync_id"]), "sync_utc": _iso(row["sync_utc"])}
                    for row in ranked.long_running
                ],
                "long_running_count": ranked.long_running_count,
            },
        )
    return len(PRESETS)


def snapshot(range_key: str, now: datetime | None = None) -> Rankings | None:
    """The last count of a preset range, unless it is older than MAX_AGE."""
    now = now or timezone.now()
    row = RankingSnapshot.objects.filter(
        range_key=range_key, computed_at__gte=now - MAX_AGE
    ).first()
    if row is None:
        return None
    return Rankings(
        failing_companies=[
            {**item, "last": _parse(item["last"])} for item in row.failing_companies
        ],
        errors=list(row.errors),
        counted_at=row.computed_at,
        streaks=[{**item, "failing_since": _parse(item["failing_since"])} for item in row.streaks],
        long_running=[{**item, "sync_utc": _parse(item["sync_utc"])} for item in row.long_running],
        long_running_count=row.long_running_count,
        from_snapshot=True,
    )


def _iso(moment: datetime | None) -> str | None:
    # Not DjangoJSONEncoder: it drops a time's microseconds.
    return moment.isoformat() if moment is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
