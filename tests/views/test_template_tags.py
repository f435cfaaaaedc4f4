"""The display tags that the long tables use instead of slower built-ins."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import UTC, datetime

import pytest
from django.urls import reverse, set_script_prefix
from django.utils import timezone

from dashboard.models import Sync
from dashboard.selectors import HistoryRow
from dashboard.templatetags.humanize_extras import brief, clip, stamp
from dashboard.templatetags.tables import status_badge, streak_rows, sync_rows


def _row() -> HistoryRow:
    return HistoryRow(
        1, uuid.uuid4(), 2000, "", 1, datetime(2026, 7, 1, tzinfo=UTC), 3, 0, 0, None, 90, "Xero",
        uuid.uuid4(), "Acme",
    )  # fmt: skip


def test_row_links_give_what_reverse_gives():
    row = _row()
    html = sync_rows([row])
    assert f'href="{reverse("company-detail", args=[row.company_uuid])}"' in html
    assert f'href="{reverse("sync-detail", args=[row.sync_id])}"' in html
    company = {"company_id": str(row.company_uuid), "name": "Acme", "failing_streak": 2,
               "failing_since": None}  # fmt: skip
    assert f'href="{reverse("company-detail", args=[row.company_uuid])}"' in streak_rows(
        [company], "/syncs/"
    )


def test_row_links_follow_the_script_prefix():
    row = _row()
    set_script_prefix("/health/")
    try:
        assert f'href="/health/syncs/{row.sync_id}/"' in sync_rows([row])
    finally:
        set_script_prefix("/")
    assert f'href="/syncs/{row.sync_id}/"' in sync_rows([row])


def test_row_links_escape_a_script_prefix():
    row = _row()
    set_script_prefix("/a&b'/")
    try:
        html = sync_rows([row])
    finally:
        set_script_prefix("/")
    assert f'href="/a&amp;b&#x27;/companies/{row.company_uuid}/"' in html
    assert f'href="/a&amp;b&#x27;/syncs/{row.sync_id}/"' in html


def test_stamp_shows_the_current_zone():
    moment = datetime(2026, 7, 1, 12, 30, 5, tzinfo=UTC)
    assert stamp(moment) == "2026-07-01 12:30:05"
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        assert stamp(moment) == "2026-07-01 08:30:05"
    assert stamp(None) == ""


def test_status_badge_escapes_the_upstream_text():
    sync = Sync(status_code=9999, status_text="<script>x</script>", category=2)
    html = status_badge(sync)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'class="badge cat-failed"' in html and ">9999<" in html


def test_brief_is_what_the_date_filter_gave_in_the_current_zone():
    from django.utils.dateformat import format as date_format

    moment = datetime(2026, 11, 5, 14, 3, 59, tzinfo=UTC)
    assert brief(moment) == "Nov 5 14:03" == date_format(moment, "M j H:i")
    with timezone.override(zoneinfo.ZoneInfo("Asia/Kolkata")):
        assert brief(moment) == "Nov 5 19:33"
    assert brief(None) == ""


def test_clip_truncates_like_truncatechars():
    from django.template.defaultfilters import truncatechars

    for text in ("", "short", "x" * 13, "y" * 14, str(uuid.uuid4()), "é" * 300):
        for length in (0, 1, 13, 220):
            assert clip(text, length) == truncatechars(text, length), (text, length)
    assert clip(None, 5) == ""


@pytest.mark.parametrize("name", ["sync-detail", "company-detail", "transaction-detail"])
def test_a_route_filter_link_is_the_url_tag_link(name):
    """`|route` reverses a one-UUID route once and fills in each row's UUID: the same
    link as `{% url %}`, and nothing but a UUID goes into it."""
    from dashboard.templatetags.tables import route

    value = uuid.uuid4()
    assert route(value, name) == reverse(name, args=[value])
    assert route(str(value).upper(), name) == reverse(name, args=[value])
    with pytest.raises(ValueError):
        route('"><script>', name)
