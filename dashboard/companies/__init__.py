"""Reads for the companies: the index (every company, sorted, searched, filtered, a page at
a time) and one company's timeline (what happened to it, newest first)."""

from .listing import (
    PAGE_SIZE,
    PAGE_SIZE_MAX,
    SORTS,
    CompanyFilter,
    CompanyPage,
    Sort,
    decode_cursor,
    page,
)
from .timeline import TIMELINE_PAGE_SIZE, Entry, Timeline, decode_timeline_cursor, timeline

__all__ = [
    "PAGE_SIZE",
    "PAGE_SIZE_MAX",
    "SORTS",
    "TIMELINE_PAGE_SIZE",
    "CompanyFilter",
    "CompanyPage",
    "Entry",
    "Sort",
    "Timeline",
    "decode_cursor",
    "decode_timeline_cursor",
    "page",
    "timeline",
]
