"""The companies' pages' inputs: the index's search, filters, sort and page, and the
timeline's page. Each becomes plain data for `dashboard.companies`; a value that is not
valid is a message on the page (400), never a 500."""

from __future__ import annotations

from typing import Any

from django import forms

from .companies import PAGE_SIZE, PAGE_SIZE_MAX, SORTS, CompanyFilter, decode_cursor
from .companies.listing import ASC, DESC
from .companies.timeline import decode_timeline_cursor
from .forms import PlatformSearchForm

MAX_SEARCH = 200
BAD_PAGE_LINK = (
    "That page link is not valid (it may be from another sort); start from the first page."
)


class CompanyFilterForm(PlatformSearchForm):
    q = forms.CharField(required=False, max_length=MAX_SEARCH, label="Search")
    platform = forms.ChoiceField(choices=[], required=False, label="Accounting platform")
    failing = forms.BooleanField(required=False, label="Failing now")
    outstanding = forms.BooleanField(required=False, label="With outstanding items")
    sort = forms.ChoiceField(
        choices=[(key, sort.label) for key, sort in SORTS.items()],
        required=False,
        error_messages={
            "invalid_choice": "There is no sort “%(value)s”: sort by " + ", ".join(SORTS) + "."
        },
    )
    dir = forms.ChoiceField(
        choices=[(ASC, "Ascending"), (DESC, "Descending")],
        required=False,
        error_messages={"invalid_choice": "A sort's direction is “asc” or “desc”."},
    )
    after = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)
    before = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)
    size = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=PAGE_SIZE_MAX,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": f"A page holds 1 to {PAGE_SIZE_MAX} companies.",
            "min_value": f"A page holds 1 to {PAGE_SIZE_MAX} companies.",
            "max_value": f"A page holds 1 to {PAGE_SIZE_MAX} companies.",
        },
    )

    def _sort(self) -> tuple[str, str]:
        sort = self.cleaned_data.get("sort") or "name"
        return sort, self.cleaned_data.get("dir") or SORTS[sort].natural

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "sort" in self.errors or "dir" in self.errors:
            return data
        sort, direction = self._sort()
        after, before = data.get("after") or "", data.get("before") or ""
        if after and before:
            raise forms.ValidationError(BAD_PAGE_LINK)
        for name, raw in (("after", after), ("before", before)):
            data[name] = None
            if raw:
                cursor = decode_cursor(raw, sort, direction)
                if cursor is None:
                    self.add_error(name, BAD_PAGE_LINK)
                else:
                    data[name] = cursor
        return data

    def filters(self) -> CompanyFilter:
        data = self.cleaned_data
        sort, direction = self._sort()
        return CompanyFilter(
            q=data.get("q") or "",
            platform=data.get("platform") or "",
            failing=bool(data.get("failing")),
            outstanding=bool(data.get("outstanding")),
            sort=sort,
            direction=direction,
            after=data.get("after"),
            before=data.get("before"),
            size=data.get("size") or PAGE_SIZE,
        )


class TimelineForm(forms.Form):
    """A company's page: which page of its timeline."""

    timeline_after = forms.CharField(required=False, max_length=200)

    def clean_timeline_after(self) -> Any:
        raw = self.cleaned_data.get("timeline_after") or ""
        if not raw:
            return None
        cursor = decode_timeline_cursor(raw)
        if cursor is None:
            raise forms.ValidationError(
                "That timeline link is not valid; start from the newest entries."
            )
        return cursor
