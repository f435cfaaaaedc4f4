"""The history page's links, made from its query: its pages, its sort headers and
its filter chips (each filter by a name a person reads, with a link that removes it).

Every link keeps the page's other filters; a link that changes the selection
or the order drops the page's place in it (`PAGE_PARAMS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.http import QueryDict

from .filters import DEFAULT_PRESET, FIRST_DIRECTIONS, PAGE_PARAMS, PRESETS, SORTS, SyncFilter
from .problems.rows import ProblemRef, headline
from .selectors import HistoryPage
from .vocabulary import status_label

# How much of a cause a chip shows; its title holds more.
CHIP_CAUSE = 80
CHIP_TITLE = 2000
STATE_NAMES = {"outstanding": "outstanding", "resolved": "resolved", "failing": "failed attempts"}


def _query(params: QueryDict, *drop: str, **put: Any) -> str:
    """The query without the page's place, these names, and with these values."""
    params = params.copy()
    for name in (*PAGE_PARAMS, *drop):
        params.pop(name, None)
    for name, value in put.items():
        params[name] = str(value)
    return params.urlencode()


@dataclass(frozen=True)
class PageLinks:
    """The pager: its position text and the queries of the pages around this one."""

    position: str
    first_label: str
    last_label: str
    first_query: str | None
    previous_query: str | None
    next_query: str | None
    last_query: str | None


def _total(page: HistoryPage) -> str:
    return f"{page.count:,}+" if page.capped else f"{page.count:,}"


def position(page: HistoryPage) -> str:
    """Where the page stands: "51-100 of 2,435" (with an en dash), "… of 10,000+" past
    the count's bound, or "50 shown of …" when the link gave no position."""
    if not page.rows:
        return ""
    if page.first is None or page.last is None:
        return f"{len(page.rows):,} shown of {_total(page)}"
    return f"{page.first:,}\u2013{page.last:,} of {_total(page)}"


def page_links(params: QueryDict, page: HistoryPage, size: int) -> PageLinks:
    if page.sort == "time":
        ends = ("Newest", "Oldest") if page.direction == "desc" else ("Oldest", "Newest")
    else:
        ends = ("First", "Last")
    previous = next_ = None
    if page.previous_cursor:
        back: dict[str, Any] = {"before": page.previous_cursor}
        if page.first is not None:
            back["pos"] = max(page.first - size, 1)
        previous = _query(params, **back)
    if page.next_cursor:
        on: dict[str, Any] = {"after": page.next_cursor}
        if page.last is not None:
            on["pos"] = page.last + 1
        next_ = _query(params, **on)
    return PageLinks(
        position=position(page),
        first_label=ends[0],
        last_label=ends[1],
        first_query=None if page.at_start else _query(params),
        previous_query=previous,
        next_query=next_,
        last_query=None if page.at_end else _query(params, page="last"),
    )


@dataclass(frozen=True)
class SortHeader:
    key: str
    label: str
    query: str
    # The column's aria-sort ("ascending", "descending"), or "" if the page is not sorted by it.
    aria_sort: str
    arrow: str


def sort_headers(params: QueryDict, filters: SyncFilter) -> list[SortHeader]:
    """Each column's header: its first click in its natural direction, the next reversing it."""
    headers = []
    for key, label in SORTS.items():
        if key == filters.sort:
            wanted = "asc" if filters.descending else "desc"
            aria = "descending" if filters.descending else "ascending"
            arrow = "▼" if filters.descending else "▲"
        else:
            wanted, aria, arrow = FIRST_DIRECTIONS[key], "", ""
        headers.append(
            SortHeader(key, label, _query(params, "sort", "dir", sort=key, dir=wanted), aria, arrow)
        )
    return headers


@dataclass(frozen=True)
class Chip:
    """One active filter: what it is, its value in words, and the query without it."""

    testid: str
    label: str
    value: str
    remove_query: str
    # What the remove link says it does, and the filter's noun for screen readers.
    remove_title: str
    noun: str
    # A page the label links to, and the value's longer text, if any.
    link: str = ""
    title: str = ""


def _day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def range_words(start: date | None, end: date | None) -> str:
    """A custom range in words: "1 March 2026 to 15 March 2026", "since …", "until …"."""
    if start and end:
        return f"on {_day(start)}" if start == end else f"{_day(start)} to {_day(end)}"
    if start:
        return f"since {_day(start)}"
    return f"until {_day(end)}" if end else ""


def chips(
    params: QueryDict,
    filters: SyncFilter,
    cleaned: dict[str, Any],
    *,
    company_name: str | None = None,
    fingerprint_cause: str | None = None,
    problem: ProblemRef | None = None,
) -> list[Chip]:
    """A chip for each active filter, in the filter form's order."""
    found: list[Chip] = []
    if filters.q:
        found.append(
            Chip("chip-search", "Search", f"“{filters.q}”", _query(params, "q"), "Clear the search",
                 "search")
        )  # fmt: skip
    if filters.preset == "custom":
        words = range_words(cleaned.get("start"), cleaned.get("end"))
        found.append(_range_chip(params, words))
    elif filters.preset != DEFAULT_PRESET:
        found.append(_range_chip(params, PRESETS[filters.preset][0]))
    for code in filters.codes:
        kept = [value for value in params.getlist("code") if value != str(code)]
        without = params.copy()
        without.setlist("code", kept)
        found.append(
            Chip("chip-code", "Status", f"{code} · {status_label(code)}", _query(without),
                 f"Drop status {code} from the filter", "status code")
        )  # fmt: skip
    if filters.category is not None:
        found.append(
            Chip("chip-category", "Outcome", filters.category.label, _query(params, "category"),
                 "Show every outcome", "outcome")
        )  # fmt: skip
    if filters.platform:
        found.append(
            Chip("chip-platform", "Platform", filters.platform, _query(params, "platform"),
                 "Show every platform", "platform")
        )  # fmt: skip
    if filters.failed_items:
        found.append(
            Chip("chip-failed-items", "Items", "has failed items",
                 _query(params, "failed_items"), "Show syncs with or without failed items",
                 "failed items")
        )  # fmt: skip
    if filters.state:
        found.append(
            Chip("chip-state", "Now", STATE_NAMES[filters.state], _query(params, "state"),
                 "Show syncs in any state", "state")
        )  # fmt: skip
    if filters.company:
        name = company_name if company_name is not None else f"unknown ({filters.company})"
        found.append(
            Chip("chip-company", "Company", name, _query(params, "company"),
                 "Show every company", "company")
        )  # fmt: skip
    if filters.fingerprint:
        cause = fingerprint_cause or "an error no sync holds now"
        found.append(
            Chip("chip-error", "Error", headline(cause, CHIP_CAUSE), _query(params, "fingerprint"),
                 "Show every error", "error", title=headline(cause, CHIP_TITLE))
        )  # fmt: skip
    if problem is not None:
        found.append(
            Chip("problem-chip", problem.label, problem.headline, _query(params, "problem"),
                 "Show every problem's syncs", "problem", link=problem.url,
                 title=headline(problem.cause, CHIP_TITLE))
        )  # fmt: skip
    return found


def _range_chip(params: QueryDict, words: str) -> Chip:
    return Chip(
        "chip-range", "Dates", words, _query(params, "range", "start", "end"),
        f"Back to the {PRESETS[DEFAULT_PRESET][0].lower()}", "date range",
    )  # fmt: skip
