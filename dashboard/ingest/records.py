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
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
