"""Forms of the Problems pages: the list's filters, and what people do to a problem.

The filters become a `ProblemFilter` (plain data) for the reads; the action
forms check their input's shape, and `dashboard.problems.lifecycle` decides
what is allowed (its `ValidationError`s land on the same form).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db.models import Q

from .platforms import platform_names_with
from .problems import selectors
from .problems.lifecycle import NOTE_MAX, PLAYBOOK_MAX
from .problems.selectors import ACTIVE, ANY_STATE, CURSORS, SORTS, ProblemFilter
from .roles import LEAD, RUNNER, VIEWER
from .vocabulary import STATUS_CODES, Category, ProblemState, status_label

STATE_CHOICES = [
    (ACTIVE, "Needs attention (open or regressed)"),
    *[(s.value, s.label) for s in ProblemState if s != ProblemState.MERGED],
    (ANY_STATE, "Any state"),
]
# The codes a problem can have: the failures (an unknown code is one too).
FAILURE_CODES = [
    (code, f"{code} · {text}")
    for code, (text, category) in STATUS_CODES.items()
    if category == Category.FAILED
]
# Who may be assigned a problem: anyone with a support role. Teams are small;
# the cap keeps a form bounded all the same.
ASSIGNABLE_MAX = 500
ME, NOBODY = "me", "none"


def support_users() -> list[tuple[int, str]]:
    """(user ID, username) of the active users who hold a support role, by name."""
    return list(
        User.objects.filter(
            Q(groups__name__in=[VIEWER, RUNNER, LEAD]) | Q(is_superuser=True), is_active=True
        )
        .order_by("username")
        .values_list("pk", "username")
        .distinct()[:ASSIGNABLE_MAX]
    )


class ProblemFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_CHOICES, required=False)
    code = forms.IntegerField(
        required=False,
        min_value=1000,
        max_value=9999,
        label="Status code",
        error_messages={"invalid": "A status code is a four-digit number."},
    )
    platform = forms.ChoiceField(choices=[], required=False, label="Accounting platform")
    assignee = forms.ChoiceField(choices=[], required=False)
    changed = forms.BooleanField(required=False, label="New or regressed since I last looked")
    sort = forms.ChoiceField(choices=list(SORTS.items()), required=False)
    after = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def __init__(self, *args: Any, users: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        platforms = platform_names_with(self.data.get("platform") if self.is_bound else None)
        # A company without a platform counts under "Unknown" in a problem's platforms.
        names = [*platforms, *([] if "Unknown" in platforms else ["Unknown"])]
        self._set_choices("platform", [("", "Any"), *((p, p) for p in names)])
        # (Someone named "me" or "none" is found as "Me", or not by name.)
        self.users = {name: pk for pk, name in users if name not in (ME, NOBODY)}
        self._set_choices(
            "assignee",
            [("", "Anyone"), (ME, "Me"), (NOBODY, "Nobody")] + [(n, n) for n in self.users],
        )

    def _set_choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean_after(self) -> tuple[Any, ...] | None:
        raw = self.cleaned_data.get("after") or ""
        if not raw or "sort" in self.errors:
            return None
        cursor = selectors.decode_cursor(raw, CURSORS[self.cleaned_data.get("sort") or "impact"])
        if cursor is None:
            raise forms.ValidationError("That page link is not valid; start from the first page.")
        return cursor

    def filters(self, *, user_id: int | None, since: datetime | None) -> ProblemFilter:
        data = self.cleaned_data
        assignee = data.get("assignee") or ""
        return ProblemFilter(
            state=data.get("state") or ACTIVE,
            code=data.get("code"),
            platform=data.get("platform") or "",
            assignee=user_id if assignee == ME else self.users.get(assignee),
            unassigned=assignee == NOBODY,
            changed=bool(data.get("changed")),
            since=since,
            sort=data.get("sort") or "impact",
            after=data.get("after"),
        )


def code_options(form: ProblemFilterForm) -> list[tuple[int, str, bool]]:
    """The status code filter's options: the failure codes, and an unknown one asked for."""
    chosen = form.cleaned_data.get("code") if hasattr(form, "cleaned_data") else None
    options = [(code, label, code == chosen) for code, label in FAILURE_CODES]
    if chosen is not None and chosen not in {code for code, _ in FAILURE_CODES}:
        options.append((chosen, f"{chosen} · {status_label(chosen)}", True))
    return options


class DetailForm(forms.Form):
    """A problem's page: which company the customer message is for, and each list's page."""

    company = forms.UUIDField(required=False)
    companies_after = forms.CharField(required=False, max_length=200)
    items_after = forms.CharField(required=False, max_length=200)
    syncs_after = forms.CharField(required=False, max_length=200)
    activity_after = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("companies", "items", "syncs", "activity"):
            raw = data.get(f"{name}_after") or ""
            data[f"{name}_after"] = None
            if raw:
                cursor = selectors.decode_cursor(raw, CURSORS[name])
                if cursor is None:
                    self.add_error(
                        f"{name}_after", "That page link is not valid; start from the first page."
                    )
                data[f"{name}_after"] = cursor
        return data


# --- what people do to a problem ---


class AssignForm(forms.Form):
    assignee = forms.TypedChoiceField(
        choices=[], coerce=int, empty_value=None, required=False, label="Assign to"
    )

    def __init__(self, *args: Any, users: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Nobody (unassign)"), *users]


class NoteForm(forms.Form):
    text = forms.CharField(
        max_length=NOTE_MAX,
        label="Note",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write something for the note."},
    )


class TicketForm(forms.Form):
    url = forms.CharField(
        required=False,
        max_length=500,
        label="Ticket link",
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
    )


class IgnoreForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=NOTE_MAX, label="Why (optional)", strip=False
    )


class SnoozeForm(forms.Form):
    until = forms.DateTimeField(
        required=False,
        label="Until",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    more_failures = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1_000_000,
        label="or until this many more items fail",
    )


class PlaybookForm(forms.Form):
    playbook = forms.CharField(
        required=False,
        max_length=PLAYBOOK_MAX,
        strip=False,
        label="Playbook (Markdown)",
        widget=forms.Textarea(attrs={"rows": 10}),
    )
    customer_message = forms.CharField(
        required=False,
        max_length=PLAYBOOK_MAX,
        strip=False,
        label="Customer message",
        widget=forms.Textarea(attrs={"rows": 10}),
    )


class MergeForm(forms.Form):
    into = forms.IntegerField(
        min_value=1,
        max_value=2**63 - 1,
        label="Merge into problem #",
        error_messages={"required": "Give the number of the problem to merge into."},
    )
