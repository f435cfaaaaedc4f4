"""Forms that validate every input of the pages, GET filters included.

An invalid filter never reaches a query: the page shows the form's message
and an empty result instead of a 500.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils import timezone

from . import pushed_items
from .audit import AccessFilter
from .failed_items import QUERY_MIN
from .filters import (
    DEFAULT_PRESET,
    FIRST_DIRECTIONS,
    PRESETS,
    SORTS,
    Range,
    SyncFilter,
    decode_cursor,
)
from .models import Problem, Theme
from .platforms import platform_names_with
from .problems.rows import ProblemRef
from .vocabulary import CATEGORY_BY_KEY, STATUS_CODES, AccessAction, ItemFilter, RetryState

MAX_SEARCH = 200
# The days a filter may name. Nothing older than 2000 exists; and a range ends
# at the midnight after its last day, which must still be a date (there is
# none after 9999-12-31): 2999 is past any real range and far from that edge.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)
BAD_PAGE_LINK = "That page link is not valid; start from the first page."


def code_choices() -> list[tuple[str, list[tuple[int, str]]]]:
    groups: dict[str, list[tuple[int, str]]] = {}
    for code, (text, category) in STATUS_CODES.items():
        groups.setdefault(category.label, []).append((code, f"{code} · {text}"))
    return list(groups.items())


@functools.cache
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class DayField(forms.DateField):
    """A day of a date filter, between `FIRST_DAY` and `LAST_DAY`."""

    default_validators = [
        MinValueValidator(FIRST_DAY, message=f"Enter a date in {FIRST_DAY.year} or later."),
        MaxValueValidator(LAST_DAY, message=f"Enter a date in {LAST_DAY.year} or earlier."),
    ]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}))
        super().__init__(**kwargs)


class PlatformSearchForm(forms.Form):
    """A filter form's `platform` choices (the platforms the mirror knows) and its `q`
    search text with its spaces tidied; the form declares both fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        platforms = platform_names_with(self.data.get("platform") if self.is_bound else None)
        field = self.fields["platform"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Any")] + [(p, p) for p in platforms]

    def clean_q(self) -> str:
        return " ".join(str(self.cleaned_data.get("q") or "").split())


class RangeForm(forms.Form):
    """A date range: a preset, or custom dates (inclusive, in the user's time zone)."""

    _range: Range | None = None

    range = forms.ChoiceField(
        choices=[(k, v[0]) for k, v in PRESETS.items()] + [("custom", "Custom")], required=False
    )
    start = DayField()
    end = DayField()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("range") not in ("", "custom", None):
            # A preset chosen after custom dates wins over them.
            data["start"] = data["end"] = None
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must not be after the end date.")
        if start or end:
            data["range"] = "custom"
        return data

    def date_range(self, now: datetime | None = None) -> Range:
        """The range the form selects; ending at `now`, or at the first call's now.

        Without `now`, every part of a request (its count, its rows, its
        heading) reads the same range.
        """
        if now is None:
            if self._range is None:
                self._range = self._date_range(timezone.now())
            return self._range
        return self._date_range(now)

    def _date_range(self, now: datetime) -> Range:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        start_day, end_day = data.get("start"), data.get("end")
        zone = timezone.get_current_timezone()
        if start_day or end_day:
            start = datetime.combine(start_day, time.min, tzinfo=zone) if start_day else None
            end = (
                datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=zone)
                if end_day
                else now
            )
            label = f"{start_day or '…'} to {end_day or 'now'}"
            return Range(start, end, label)
        key = data.get("range") or DEFAULT_PRESET
        if key not in PRESETS:
            key = DEFAULT_PRESET
        label, span = PRESETS[key]
        return Range(now - span if span else None, now, label)


class SyncFilterForm(PlatformSearchForm, RangeForm):
    """The history's filters; also what the dashboard's links and the CSV export use."""

    q = forms.CharField(
        required=False,
        max_length=MAX_SEARCH,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "placeholder": "Sync, company or transaction ID (or its first 6+ characters), "
                "or company name",
                "type": "search",
            }
        ),
    )
    code = forms.TypedMultipleChoiceField(
        choices=code_choices, coerce=int, required=False, label="Status codes"
    )
    category = forms.ChoiceField(
        choices=[("", "Any")] + [(k, v.label) for k, v in CATEGORY_BY_KEY.items()], required=False
    )
    platform = forms.ChoiceField(choices=[], required=False, label="Accounting platform")
    failed_items = forms.BooleanField(required=False, label="Has failed items")
    state = forms.ChoiceField(
        choices=[
            ("", "Any"),
            ("outstanding", "Outstanding (items still to push; retries count in their original)"),
            ("resolved", "Resolved (by a later push)"),
            ("failing", "Failed attempts (a sync and its retries, once)"),
        ],
        required=False,
        label="Now",
    )
    company = forms.UUIDField(required=False, widget=forms.HiddenInput)
    fingerprint = forms.RegexField(
        regex=r"^[0-9a-f]{16}$", required=False, widget=forms.HiddenInput,
        error_messages={"invalid": "That error group is not valid."},
    )  # fmt: skip
    problem = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "That problem is not valid: a problem is named by its number.",
            "min_value": "That problem is not valid: a problem is named by its number.",
            "max_value": "That problem is not valid: a problem is named by its number.",
        },
    )
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    dir = forms.ChoiceField(choices=[("desc", "Descending"), ("asc", "Ascending")], required=False)
    after = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
    before = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)
    page = forms.ChoiceField(
        choices=[("last", "Last page")], required=False, widget=forms.HiddenInput,
        error_messages={"invalid_choice": BAD_PAGE_LINK},
    )  # fmt: skip
    # Where the page's first row stands in the selection (1 for the first
    # page), carried from page to page for its heading; it selects nothing.
    pos = forms.IntegerField(
        required=False, min_value=1, max_value=10**9, widget=forms.HiddenInput,
        error_messages={
            key: BAD_PAGE_LINK
            for key in ("invalid", "min_value", "max_value")
        },
    )  # fmt: skip
    # The problem the filter names, for its chip (once the form is valid).
    problem_shown: ProblemRef | None = None

    def clean_problem(self) -> int | None:
        """The problem named, or the one it was merged into (its items moved there)."""
        pk = self.cleaned_data.get("problem")
        if pk is None:
            return None
        cause = ""
        for _ in range(5):  # a merge never names a merged problem: one hop, in practice
            row = Problem.objects.filter(pk=pk).values_list("cause", "merged_into_id").first()
            if row is None:
                raise forms.ValidationError(f"There is no problem #{pk}.")
            cause, merged_into = row
            if merged_into is None:
                break
            pk = merged_into
        self.problem_shown = ProblemRef(pk, cause)
        return pk

    def _cursor(self, name: str) -> tuple | None:
        raw = self.cleaned_data.get(name) or ""
        if not raw or "sort" in self.errors:
            # No cursor, or no valid sort to read it by (that error is shown).
            return None
        cursor = decode_cursor(raw, self.cleaned_data.get("sort") or "time")
        if cursor is None:
            raise forms.ValidationError(BAD_PAGE_LINK)
        return cursor

    def clean_after(self) -> tuple | None:
        return self._cursor("after")

    def clean_before(self) -> tuple | None:
        return self._cursor("before")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        places = [name for name in ("after", "before", "page") if self.data.get(name)]
        if len(places) > 1:
            raise forms.ValidationError(
                "That page link is not valid: it names more than one place to start "
                f"({' and '.join(places)}); start from the first page."
            )
        return data

    def filters(self, now: datetime | None = None) -> SyncFilter:
        """The valid filter this form holds, its rolling range ending at `now`.

        Without `now`, every part of a request reads the same range (see `date_range`).
        """
        data = self.cleaned_data
        category = data.get("category")
        sort = data.get("sort") or "time"
        return SyncFilter(
            span=self.date_range(now),
            preset=data.get("range") or DEFAULT_PRESET,
            q=data.get("q") or "",
            codes=tuple(data.get("code") or ()),
            category=CATEGORY_BY_KEY[category] if category else None,
            platform=data.get("platform") or "",
            failed_items=bool(data.get("failed_items")),
            company=data.get("company"),
            fingerprint=data.get("fingerprint") or "",
            problem=data.get("problem"),
            state=data.get("state") or "",
            sort=sort,
            descending=(data.get("dir") or FIRST_DIRECTIONS[sort]) == "desc",
            after=data.get("after"),
            before=data.get("before"),
            last_page=data.get("page") == "last",
        )


def item_status_field() -> forms.ChoiceField:
    """The push items' one status filter (`ItemFilter`): all, failed, completed, …"""
    return forms.ChoiceField(
        choices=[("", "All"), *ItemFilter.choices],
        required=False,
        error_messages={
            "invalid_choice": "“%(value)s” is not a status filter; choose one of "
            + ", ".join(ItemFilter.values)
            + ", or none for all."
        },
    )


class ItemFilterForm(forms.Form):
    """The Push items tab: search by core ID, data type or message, filter by status."""

    q = forms.CharField(
        required=False,
        max_length=MAX_SEARCH,
        label="Search",
        widget=forms.TextInput(
            attrs={"placeholder": "Core ID, data type or words of the message", "type": "search"}
        ),
    )
    status = item_status_field()
    page = forms.IntegerField(min_value=1, max_value=100_000, required=False)

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        if data is not None and data.get("status", "").isdigit():
            # Links from before the one filter named a status by its number (`status=4`).
            data = data.copy()
            data["status"] = ItemFilter.containing(int(data["status"]))
        super().__init__(data, **kwargs)

    def clean_q(self) -> str:
        return str(self.cleaned_data.get("q") or "").strip()


class PushedItemsForm(PlatformSearchForm, RangeForm):
    """The push items of a date range: the dashboard's range and platform, and a status."""

    platform = forms.ChoiceField(choices=[], required=False, label="Accounting platform")
    status = item_status_field()
    after = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_after(self) -> pushed_items.Cursor | None:
        raw = self.cleaned_data.get("after") or ""
        if not raw:
            return None
        cursor = pushed_items.decode_cursor(raw)
        if cursor is None:
            raise forms.ValidationError("That page link is not valid; start from the newest.")
        return cursor

    def filters(self) -> SyncFilter:
        """The syncs whose items the page lists: the range and the platform."""
        data = self.cleaned_data
        return SyncFilter(
            span=self.date_range(),
            preset=data.get("range") or DEFAULT_PRESET,
            platform=data.get("platform") or "",
        )

    @property
    def item_filter(self) -> ItemFilter | None:
        status = self.cleaned_data.get("status")
        return ItemFilter(status) if status else None


class ItemSearchForm(forms.Form):
    """The item search: a transaction ID (or its first 8+ characters), or words of a message."""

    q = forms.CharField(
        required=False,
        max_length=MAX_SEARCH,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "placeholder": "Transaction ID (or its first 8+ characters), or words of the "
                "error message",
                "type": "search",
                "maxlength": MAX_SEARCH,
            }
        ),
    )
    after = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_q(self) -> str:
        q = " ".join(str(self.cleaned_data.get("q") or "").split())
        if q and len(q.replace(" ", "")) < QUERY_MIN:
            raise forms.ValidationError(
                f"Search for at least {QUERY_MIN} characters: fewer match too much."
            )
        return q

    def clean_after(self) -> tuple | None:
        raw = self.cleaned_data.get("after") or ""
        if not raw:
            return None
        cursor = decode_cursor(raw, "time")
        if cursor is None:
            raise forms.ValidationError("That page link is not valid; start from the newest.")
        return cursor


class PreferenceForm(forms.Form):
    use_local_time = forms.BooleanField(required=False, label="Show local time instead of UTC")
    time_zone = forms.ChoiceField(choices=[], label="Local time zone")
    # Left out, the theme stays as it was.
    theme = forms.ChoiceField(
        choices=Theme.choices, required=False, widget=forms.RadioSelect, label="Colours"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(z, z) for z in time_zones()]


class ThemeForm(forms.Form):
    """The header's theme switch."""

    theme = forms.ChoiceField(choices=Theme.choices)


class AuditFilterForm(forms.Form):
    user = forms.CharField(required=False, max_length=150)
    company = forms.UUIDField(required=False, label="Company ID")
    state = forms.ChoiceField(required=False, choices=[])
    start = DayField()
    end = DayField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["state"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Any"), *RetryState.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date must not be after the end date.")
        return data


class AccessAuditFilterForm(forms.Form):
    """The access audit's filters: an action, a user, days (in the user's time zone)."""

    action = forms.ChoiceField(required=False, choices=[("", "Any"), *AccessAction.choices])
    user = forms.CharField(required=False, max_length=150)
    start = DayField(label="From")
    end = DayField(label="To")
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_after(self) -> tuple[datetime, int] | None:
        raw = self.cleaned_data.get("after") or ""
        if not raw:
            return None
        cursor = decode_cursor(raw, "time")
        if cursor is None:
            raise forms.ValidationError("This page link is not valid; start from the newest.")
        return cursor

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The start date must not be after the end date.")
        return data

    def filters(self) -> AccessFilter:
        """The valid form's selection, its days turned into moments in the user's zone."""
        data = self.cleaned_data
        zone = timezone.get_current_timezone()
        start, end = data.get("start"), data.get("end")
        return AccessFilter(
            action=data.get("action") or "",
            username=data.get("user") or "",
            start=datetime.combine(start, time.min, tzinfo=zone) if start else None,
            end=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone) if end else None,
            after=data.get("after"),
        )


class MemberIdsField(forms.Field):
    """The members a preview page listed or ticked: whole numbers, at most a page's worth."""

    widget = forms.MultipleHiddenInput
    MAX = 1_000

    def to_python(self, value: Any) -> list[int]:
        values = list(value or [])
        if len(values) > self.MAX:
            raise forms.ValidationError("Too many syncs in one form; reload the page.")
        message = "The list of syncs was not valid; reload the page."
        try:
            ids = [int(v) for v in values]
        except (TypeError, ValueError):
            raise forms.ValidationError(message) from None
        # IDs are positive bigints; a number past them fails the query, not a lookup.
        if any(not 0 < pk < 2**63 for pk in ids):
            raise forms.ValidationError(message)
        return ids


class BulkReviewForm(forms.Form):
    """One page of a bulk retry's preview: its ticks, and the confirmation."""

    key = forms.UUIDField(widget=forms.HiddenInput)
    shown = MemberIdsField(required=False)
    keep = MemberIdsField(required=False)
    expected = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    typed = forms.CharField(
        required=False,
        max_length=20,
        label="Number of syncs",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    def clean_typed(self) -> int | None:
        """The number typed, allowing the separators the page shows (1,234 or 1 234)."""
        raw = str(self.cleaned_data.get("typed") or "")
        digits = "".join(raw.replace(",", "").replace("\u202f", "").split())
        if not digits:
            return None
        if not digits.isdecimal():
            raise forms.ValidationError(f"“{raw}” is not a number: type the number of syncs.")
        return int(digits)
