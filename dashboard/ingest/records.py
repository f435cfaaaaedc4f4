"""What every part of ingest shares: upstream values parsed, batch sizes, the tally."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..db import chunked as chunked

# Rows per bulk statement.
BATCH = 2000


@dataclass
class Stats:
    """What a refresh saw and wrote."""

    companies: int = 0
    syncs_seen: int = 0
    syncs_written: int = 0
    syncs_fetched: int = 0
    items_seen: int = 0
    items_written: int = 0
    items_deleted: int = 0
    configs_written: int = 0

    def add(self, other: Stats) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def parse_time(value: str | None) -> datetime | None:
    """An upstream time in UTC; None when it is missing or is not a time.

    Not a time includes the well-formed but impossible ("2026-13-45T00:00Z",
    an offset of 99 hours) and the moments that have no UTC date (the last
    hours of 9999 west of Greenwich): the upstream's text is data, so it is
    refused here rather than raising wherever it is used.
    """
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            return None
        if timezone.is_naive(parsed):
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
