"""Upstream text is escaped everywhere HTML is built, whatever column it lands in.

The builders are fed rows whose every text value, one at a time, is `<x>`;
the pages are rendered from a mirror whose every text column holds `<x>`.
A column added later is covered without anyone remembering to.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django import forms
from django.db import models
from django.urls import reverse
from django.utils import timezone

from dashboard import chart, rankings
from dashboard.models import Company, ConfigSnapshot, Problem, PushItem, Sync, TransactionState
from dashboard.problems.rows import Cause, ProblemRef
from dashboard.selectors import HistoryRow
from dashboard.templatetags import tables
from dashboard.vocabulary import Category, ItemStatus

HOSTILE = "<x>"
MOMENT = datetime(2026, 7, 1, 12, tzinfo=UTC)


def _history_row() -> HistoryRow:
    return HistoryRow(
        1, uuid.uuid4(), 9999, "text", 2, MOMENT, 3, 1, 1, None, 90, "Xero", uuid.uuid4(), "Acme"
    )


def _causes() -> dict[int, Cause]:
    """A cause for each kind of row: outstanding problems, a message."""
    return {
        1: Cause(((ProblemRef(7, "cause"), 3), (ProblemRef(8, "other"), 1))),
        2: Cause(message="message"),
    }


def _company() -> dict[str, Any]:
    return {"pk": 1, "company_id": str(uuid.uuid4()), "name": "Acme", "platform_name": "Xero"}


def _chart() -> chart.Chart:
    start = MOMENT
    bucket = {"start": start, "end": start + timedelta(days=1), "success": 2, "failed": 1}
    return chart.build([{**bucket, "in_progress": 1}], "day")


class _Form(forms.Form):
    choice = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], required=False)
    codes = forms.MultipleChoiceField(choices=[("1", "One")], required=False)


# Each builder with arguments that hold text in every place a row can.
BUILDERS: dict[str, tuple[Callable[..., str], Callable[[], list[Any]]]] = {
    "sync_rows": (
        tables.sync_rows,
        lambda: [[_history_row(), _history_row()._replace(pk=2)], _causes()],
    ),
    "code_rows": (tables.code_rows, lambda: [[(9999, "text", 2, 5)], "/syncs/", "range=7d"]),
    "failing_company_rows": (
        tables.failing_company_rows,
        lambda: [[{"company": _company(), "failed": 3, "last": MOMENT}], "/syncs/", "q=1"],
    ),
    "streak_rows": (
        tables.streak_rows,
        lambda: [
            [
                {
                    "company_id": str(uuid.uuid4()),
                    "name": "Acme",
                    "failing_streak": 2,
                    "failing_since": MOMENT,
                }
            ],
            "/syncs/",
        ],
    ),
    "long_running_rows": (
        tables.long_running_rows,
        lambda: [[{"sync_id": str(uuid.uuid4()), "sync_utc": MOMENT, "company": {"name": "A"}}]],
    ),
    "chart_bars": (tables.chart_bars, lambda: [_chart(), "/syncs/", "Xero"]),
    "chart_table": (tables.chart_table, lambda: [_chart()]),
    "status_badge": (
        tables.status_badge,
        lambda: [Sync(status_code=9999, status_text="text", category=2)],
    ),
    "select_field": (
        lambda choices: tables.select_field(_bound("choice", choices)),
        lambda: [[("a", "A"), ("b", "B")]],
    ),
    "code_checkboxes": (
        lambda choices, groups: tables.code_checkboxes(_bound("codes", choices), groups),
        lambda: [[("1", "One")], [("Group", [(1, "One")])]],
    ),
}


def _bound(name: str, choices: list[tuple[str, str]]) -> forms.BoundField:
    form = _Form({name: [value for value, _ in choices]})
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices
    return form[name]


def _texts(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path to every text value inside a structure of lists, dicts and records."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _texts(item, (*path, index))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _texts(getattr(value, f.name), (*path, f.name))
    elif isinstance(value, Sync):
        for name in ("status_text", "error_message", "platform_name"):
            yield (*path, name)


def _replaced(value: Any, path: tuple, new: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    if isinstance(value, tuple) and hasattr(value, "_replace"):
        return value._replace(**{value._fields[head]: _replaced(value[head], rest, new)})
    if isinstance(value, list | tuple):
        items = list(value)
        items[head] = _replaced(items[head], rest, new)
        return type(value)(items) if isinstance(value, tuple) else items
    if isinstance(value, Sync):
        setattr(value, head, new)
        return value
    return dataclasses.replace(value, **{head: _replaced(getattr(value, head), rest, new)})


def _cases() -> Iterator[Any]:
    for name, (_builder, arguments) in BUILDERS.items():
        for path in _texts(arguments()):
            yield pytest.param(name, path, id=f"{name}-{'.'.join(map(str, path))}")


@pytest.mark.parametrize(("name", "path"), list(_cases()))
def test_no_builder_lets_a_text_value_through_raw(name, path):
    builder, arguments = BUILDERS[name]
    try:
        markup = str(builder(*_replaced(arguments(), path, HOSTILE)))
    except ValueError:
        # An ID that links a row is parsed as a UUID: hostile text never reaches the page.
        return
    assert HOSTILE not in markup


def test_every_builder_of_the_tables_library_is_covered():
    built = {name for name, function in tables.register.tags.items()}
    assert built <= set(BUILDERS)


def _hostile_values(model: type[models.Model]) -> dict[str, str]:
    """`<x>` for every text column of a model that is not a key or a choice."""
    return {
        f.name: HOSTILE
        for f in model._meta.get_fields()
        if isinstance(f, models.CharField | models.TextField)
        and not f.choices
        and not f.unique
        and f.name not in {"integration_type"}
    }


@pytest.fixture
def hostile_mirror(db) -> Sync:
    company = Company.objects.create(company_id=uuid.uuid4(), **_hostile_values(Company))
    company.failing_streak, company.failing_since = 3, timezone.now() - timedelta(hours=5)
    company.save()
    syncs = []
    for code, category, ago in (
        (5130, Category.FAILED, 2),
        (1010, Category.IN_PROGRESS, 3),
        (9999, Category.FAILED, 4),
    ):
        values = {**_hostile_values(Sync), "error_fingerprint": "0123456789abcdef"}
        syncs.append(
            Sync.objects.create(
                sync_id=uuid.uuid4(),
                company=company,
                status_code=code,
                category=category,
                sync_utc=timezone.now() - timedelta(hours=ago),
                items_total=1,
                items_failed=1,
                **values,
            )
        )
    item = PushItem.objects.create(
        sync=syncs[0],
        transaction_id=uuid.uuid4(),
        status=ItemStatus.PUSH_ERROR,
        **_hostile_values(PushItem),
    )
    problem = Problem.objects.create(status_code=5130, **_hostile_values(Problem))
    TransactionState.objects.create(
        company=company,
        transaction_id=item.transaction_id,
        last_sync=syncs[0],
        last_sync_utc=syncs[0].sync_utc,
        status=ItemStatus.PUSH_ERROR,
        outstanding=True,
        problem=problem,
    )
    Sync.objects.filter(pk=syncs[0].pk).update(items_outstanding=1)
    Sync.objects.filter(pk=syncs[2].pk).update(problem=problem, items_total=0, items_failed=0)
    ConfigSnapshot.objects.create(
        company=company, digest="d", config={HOSTILE: HOSTILE, "nested": [HOSTILE]}
    )
    return syncs[0]


@pytest.mark.parametrize("counted", [False, True], ids=["live", "snapshot"])
def test_no_page_shows_upstream_text_raw(viewer_client, hostile_mirror, counted):
    if counted:
        rankings.refresh()
    sync = hostile_mirror
    pages = [
        reverse("summary"),
        reverse("summary") + "?range=24h",
        reverse("sync-history"),
        reverse("sync-history") + "?q=%3Cx%3E&range=all",
        reverse("sync-history") + f"?platform={HOSTILE}",
        reverse("sync-detail", args=[sync.sync_id]),
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=items",
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=items&q=%3Cx%3E",
        reverse("sync-detail", args=[sync.sync_id]) + "?tab=config",
        reverse("company-detail", args=[sync.company.company_id]),
        reverse("transaction-detail", args=[sync.items.get().transaction_id]),
        reverse("sync-history") + f"?q={sync.items.get().transaction_id}",
        reverse("sync-history") + f"?q={str(sync.sync_id)[:8]}",
        reverse("sync-history") + f"?q={str(sync.company.company_id)[:6]}",
        reverse("sync-history") + f"?problem={Problem.objects.get().pk}",
        reverse("sync-detail", args=[Sync.objects.get(status_code=9999).sync_id]),
        reverse("item-search") + "?q=%3Cx%3E",
        reverse("item-search") + f"?q={sync.items.get().transaction_id}",
        reverse("items-pushed") + "?range=all",
        reverse("items-pushed") + f"?range=all&platform={HOSTILE}",
    ]
    for url in pages:
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert HOSTILE not in body, url
    assert "&lt;x&gt;" in viewer_client.get(reverse("summary")).content.decode()
    # The causes, the problems and the item search show the text, escaped.
    history = viewer_client.get(reverse("sync-history")).content.decode()
    assert history.count(f"Problem #{Problem.objects.get().pk}</a> &lt;x&gt;") == 2
    found = viewer_client.get(reverse("item-search") + "?q=%3Cx%3E").content.decode()
    assert 'data-testid="found-item"' in found and 'data-testid="found-problem"' in found
