"""What the pages filter syncs by, as plain frozen data.

The filter forms (`dashboard.forms`) validate a request and build a
`SyncFilter`; the reads (`selectors`, `rankings`) take one and never see a
form. The date presets, sorts and the history's page cursor live here, where
both sides read them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .vocabulary import Category

PRESETS: dict[str, tuple[str, timedelta | None]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
    "all": ("All time", None),
}
DEFAULT_PRESET = "7d"
SORTS = {
    "time": "Time",
    "company": "Company",
    "platform": "Platform",
    "status": "Status",
    "items": "Items",
    "duration": "Duration",
}


@dataclass(frozen=True)
class Range:
    start: datetime | None
    end: datetime
    label: str

    @property
    def hours(self) -> float:
        if self.start is None:
            return float("inf")
        return (self.end - self.start).total_seconds() / 3600


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def search_kind(q: str) -> str:
    """How a search is looked up: a whole UUID, an ID prefix, a name, or nothing."""
    if not q:
        return ""
    if _is_uuid(q):
        return "uuid"
    if re.fullmatch(r"[0-9a-fA-F-]{4,36}", q):
        return "prefix"
    return "name"


@dataclass(frozen=True)
class SyncFilter:
    """A valid selection of syncs: a date range and the other filters, all optional."""

    span: Range
    # The preset the range came from ("7d", …), or "custom" for dates.
    preset: str = DEFAULT_PRESET
    q: str = ""
    codes: tuple[int, ...] = ()
    category: Category | None = None
    platform: str = ""
    failed_items: bool = False
    company: uuid.UUID | None = None
    fingerprint: str = ""
    # Current state: "outstanding" (something still to push), "resolved", or
    # "failing" (an original whose retry chain still counts as failed).
    state: str = ""
    sort: str = "time"
    descending: bool = True
    # The history's keyset cursor: (the sort column's value, the sync's pk).
    after: tuple[Any, int] | None = None

    @property
    def search_kind(self) -> str:
        return search_kind(self.q)

    @property
    def range_only(self) -> bool:
        """Whether nothing but the date range filters."""
        return not (
            self.q
            or self.codes
            or self.category is not None
            or self.platform
            or self.failed_items
            or self.company
            or self.fingerprint
            or self.state
        )

    @property
    def rollup_countable(self) -> bool:
        """Whether the hourly rollup can count this selection (per code and category)."""
        return not (
            self.q
            or self.platform
            or self.failed_items
            or self.company
            or self.fingerprint
            or self.state
        )


def encode_cursor(key: Any, pk: int) -> str:
    raw = json.dumps([key, pk], default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[Any, int] | None:
    """The (value, pk) a cursor holds; None if it is not one of ours."""
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[1], int):
        return None
    return value[0], value[1]
