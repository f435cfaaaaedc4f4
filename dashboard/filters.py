"""What the pages filter syncs by, as plain frozen data.

The filter forms (`dashboard.forms`) validate a request and build a
`SyncFilter`; the reads (`selectors`, `rankings`) take one and never see a
form. The date presets, sorts and the history's page cursor live here, where
both sides read them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
# Each sort's direction on its first click: names from A, times and numbers
# from the largest (the newest sync, the most items, the highest status code).
FIRST_DIRECTIONS = {
    "time": "desc",
    "company": "asc",
    "platform": "asc",
    "status": "desc",
    "items": "desc",
    "duration": "desc",
}
# The query parameters that place a page within a selection (they select
# nothing): a link that changes the selection drops them.
PAGE_PARAMS = ("after", "before", "page", "pos")


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


# Fewer characters than this match too many IDs to be worth a look-up: a
# shorter search is a name search (and the page says why).
ID_PREFIX_MIN = 6
# Where a UUID's text has its dashes (8-4-4-4-12).
_UUID_DASHES = frozenset((8, 13, 18, 23))
_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class IdRange:
    """The UUIDs an ID, or its first characters, stands for: `lower` to `upper`, inclusive.

    A prefix is a range of UUIDs (its digits then 0s, its digits then fs), so
    a search by prefix reads each ID column's own index, in order, from one
    end of the range to the other, on PostgreSQL (uuid) as on SQLite (the
    32-digit hex text Django stores there).
    """

    digits: str

    @property
    def exact(self) -> bool:
        """Whether this is a whole ID rather than its first characters."""
        return len(self.digits) == 32

    @property
    def lower(self) -> uuid.UUID:
        return uuid.UUID(self.digits.ljust(32, "0"))

    @property
    def upper(self) -> uuid.UUID:
        return uuid.UUID(self.digits.ljust(32, "f"))

    @property
    def text(self) -> str:
        """The digits as a UUID's text begins: dashed where a UUID is."""
        canonical = str(self.lower)
        shown, digits = "", 0
        for char in canonical:
            if digits == len(self.digits):
                break
            shown += char
            digits += char != "-"
        return shown


def _id_digits(q: str) -> str | None:
    """The hex digits of a search shaped like (the start of) an ID, else None.

    Case and whitespace anywhere are ignored: pasted text brings both. Dashes
    may stand only where a UUID's text has them, so "2026-03-31" stays a name.
    """
    text = "".join(q.split()).lower()
    if not text or len(text) > 36:
        return None
    if "-" in text and any((char == "-") != (i in _UUID_DASHES) for i, char in enumerate(text)):
        return None
    digits = text.replace("-", "")
    if len(digits) > 32 or not _HEX.fullmatch(digits):
        return None
    return digits


def id_range(q: str) -> IdRange | None:
    """The IDs a search names: a whole ID or at least `ID_PREFIX_MIN` of its digits."""
    digits = _id_digits(q)
    if digits is None or len(digits) < ID_PREFIX_MIN:
        return None
    return IdRange(digits)


def search_kind(q: str) -> str:
    """How a search is looked up: "id" (an ID or its start), "name", or "" (no search)."""
    if not q:
        return ""
    return "id" if id_range(q) is not None else "name"


def short_id(q: str) -> bool:
    """Whether a search looks like the start of an ID but is too short to be looked up as one."""
    digits = _id_digits(q)
    return digits is not None and 0 < len(digits) < ID_PREFIX_MIN


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
    # A problem's syncs: those holding its outstanding items (the tips of their
    # retry chains), and its failed syncs without items.
    problem: int | None = None
    # Current state: "outstanding" (something still to push), "resolved", or
    # "failing" (an original whose retry chain still counts as failed).
    state: str = ""
    sort: str = "time"
    descending: bool = True
    # The history's keyset cursors, (the sort column's value, the sync's pk):
    # the page after a row, or the page before one (read backwards).
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    # The last page in the sort's order (read backwards from the other end).
    last_page: bool = False

    @property
    def search_kind(self) -> str:
        return search_kind(self.q)

    @property
    def id_range(self) -> IdRange | None:
        """The IDs the search names, if it names IDs."""
        return id_range(self.q)

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
            or self.problem is not None
            or self.state
        )

    @property
    def problem_only(self) -> bool:
        """Whether a problem and the date range are the only filters (a problem's syncs)."""
        return self.problem is not None and dataclasses.replace(self, problem=None).range_only

    @property
    def rollup_countable(self) -> bool:
        """Whether the hourly rollup can count this selection (per code and category)."""
        return not (
            self.q
            or self.platform
            or self.failed_items
            or self.company
            or self.fingerprint
            or self.problem is not None
            or self.state
        )


def encode_cursor(key: Any, pk: int) -> str:
    raw = json.dumps([key, pk], default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# The whole numbers a cursor may hold: what a 64-bit column (PostgreSQL's
# bigint, SQLite's INTEGER) can compare against without an overflow.
_INT_LIMIT = 2**63
# What each sort's cursor holds: the type of its column's values.
_CURSOR_TYPES: dict[str, type] = {
    "time": datetime,
    "company": str,
    "platform": str,
    "status": int,
    "items": int,
    "duration": int,
}
# The sorts whose column may be null (a running sync has no duration).
_NULLABLE_CURSORS = {"duration"}


def _whole(value: Any) -> bool:
    # bool is an int to Python, not to a cursor.
    return (
        isinstance(value, int) and not isinstance(value, bool) and -_INT_LIMIT < value < _INT_LIMIT
    )


def _cursor_key(sort: str, value: Any) -> Any:
    """The sort column's value a cursor holds, typed; ValueError if it cannot be one."""
    wanted = _CURSOR_TYPES[sort]
    if value is None and sort in _NULLABLE_CURSORS:
        return None
    if wanted is int and _whole(value):
        return value
    if wanted is str and isinstance(value, str) and "\x00" not in value:
        # (PostgreSQL's text holds no NUL: a cursor with one was made by hand.)
        return value
    if wanted is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has its offset")
        # In UTC now, so a moment at the edge of the calendar fails here, not in the query.
        return moment.astimezone(UTC)
    raise ValueError(f"not a value of the {sort} sort")


def decode_cursor(raw: str, sort: str) -> tuple[Any, int] | None:
    """The (value, pk) a cursor holds for this sort, typed; None if it is not one of ours.

    A cursor comes back from the URL, so it is checked like any other input:
    a forged or stale one (another sort's value, an impossible date, a
    number no column holds) is refused here rather than failing in the query.
    """
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        if not isinstance(value, list) or len(value) != 2 or not _whole(value[1]):
            return None
        return _cursor_key(sort, value[0]), value[1]
    except (ValueError, OverflowError, binascii.Error):
        return None
