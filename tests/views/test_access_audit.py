"""The access audit: exports, downloads and refusals are recorded, and leads read them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import audit, views
from dashboard.filters import encode_cursor
from dashboard.models import AccessEvent
from dashboard.vocabulary import AccessAction
from tests.support.users import make_user


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


def recorded(action: AccessAction) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(action=action).order_by("at", "pk"))


def export_url(query: str) -> str:
    return reverse("sync-history-csv") + "?" + query


def hang_up(response) -> None:
    """The client goes away: the server closes the response, as a WSGI server does
    (but the test's database connection stays open, as under the test client)."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


# --- what is recorded ---


def test_a_csv_export_is_recorded_with_its_filter_and_the_rows_sent(viewer_client, viewer, estate):
    cursor = encode_cursor(timezone.now().isoformat(), 1)
    response = viewer_client.get(export_url(f"range=all&code=5130&after={cursor}"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    [event] = recorded(AccessAction.CSV_EXPORT)
    assert len(rows) == 1
    assert (event.user, event.username, event.path) == (viewer, "viewer", "/syncs/export.csv")
    # The page cursor is not part of the selection: left out, as the export leaves it out.
    assert event.detail == {"filter": "range=all&code=5130", "rows": 1, "finished": True}


def _export(rf, user, query: str):
    """The export view's own response, as the WSGI server gets it (the test client would
    wrap its stream)."""
    request = rf.get(export_url(query))
    request.user = user
    return views.history_csv(request)


def test_an_export_cut_short_records_the_rows_that_went(rf, viewer, estate):
    response = _export(rf, viewer, "range=all")
    lines = iter(response.streaming_content)
    next(lines), next(lines), next(lines)  # the header and two rows; then the client goes

    hang_up(response)

    [event] = recorded(AccessAction.CSV_EXPORT)
    assert (event.detail["rows"], event.detail["finished"]) == (2, False)


def test_an_export_whose_stream_never_starts_is_still_recorded(rf, viewer, estate):
    response = _export(rf, viewer, "range=all")

    hang_up(response)

    [event] = recorded(AccessAction.CSV_EXPORT)
    assert (event.username, event.client_ip) == ("viewer", "127.0.0.1")
    assert event.detail == {"filter": "range=all", "rows": 0, "finished": False}


def test_an_invalid_export_filter_exports_and_records_nothing(viewer_client, estate):
    assert viewer_client.get(export_url("code=abc")).status_code == 400

    assert not recorded(AccessAction.CSV_EXPORT)


def test_a_config_download_is_recorded_with_the_company_and_snapshot(viewer_client, estate):
    company = estate["xero"]
    snapshot = company.configs.order_by("-fetched_at").first()

    url = reverse("config-download", args=[company.company_id, snapshot.pk])
    assert viewer_client.get(url).status_code == 200

    [event] = recorded(AccessAction.CONFIG_DOWNLOAD)
    assert (event.company_id, event.company_name, event.username) == (
        company.company_id,
        "Acme Ltd",
        "viewer",
    )
    assert event.detail == {"snapshot": snapshot.pk, "fetched_at": snapshot.fetched_at.isoformat()}


def test_a_missing_config_is_no_download(viewer_client, estate):
    url = reverse("config-download", args=[estate["xero"].company_id, 999_999])

    assert viewer_client.get(url).status_code == 404
    assert not recorded(AccessAction.CONFIG_DOWNLOAD)


def test_a_refusal_for_want_of_any_role_is_recorded_with_the_role(client, estate):
    nobody = make_user("nobody")
    client.force_login(nobody)

    assert client.get(reverse("sync-history") + "?range=all").status_code == 403

    [event] = recorded(AccessAction.PERMISSION_DENIED)
    assert (event.user, event.username, event.path) == (nobody, "nobody", "/syncs/?range=all")
    assert event.detail == {"role": "Support viewer", "action": "see sync data"}


def test_a_refusal_for_want_of_a_higher_role_names_it(viewer_client, estate):
    url = reverse("sync-retry", args=[estate["push_error"].sync_id])

    assert viewer_client.get(url).status_code == 403

    [event] = recorded(AccessAction.PERMISSION_DENIED)
    assert event.detail == {"role": "Support runner", "action": "retry a sync"}


def test_the_admins_own_refusals_are_recorded_without_a_role(admin_client, admin_user, estate):
    url = reverse("admin:dashboard_company_delete", args=[estate["xero"].pk])

    assert admin_client.get(url).status_code == 403

    [event] = recorded(AccessAction.PERMISSION_DENIED)
    assert (event.user, event.path, event.detail) == (admin_user, url, {})


# --- the page ---


def _event(at: datetime, action: AccessAction = AccessAction.LOGIN, **fields) -> AccessEvent:
    return AccessEvent.objects.create(at=at, action=action, **fields)


def test_only_leads_and_admins_may_read_the_audit(client, viewer, runner, lead, admin_user):
    for user, status in ((viewer, 403), (runner, 403), (lead, 200), (admin_user, 200)):
        client.force_login(user)
        assert client.get(reverse("access-audit")).status_code == status, user


def test_the_header_links_to_the_audit_for_leads_only(client, viewer, lead, db):
    link = f'href="{reverse("access-audit")}"'
    client.force_login(viewer)
    assert link not in client.get(reverse("summary")).content.decode()
    client.force_login(lead)
    assert link in client.get(reverse("summary")).content.decode()


def test_the_page_shows_each_kind_of_event(lead_client, estate):
    now = timezone.now()
    xero = estate["xero"]
    export = {"filter": "range=all&code=5130", "rows": 1234, "finished": False}
    _event(now, AccessAction.CSV_EXPORT, username="viewer", detail=export)
    snapshot = {"snapshot": 7, "fetched_at": now.isoformat()}
    _event(
        now,
        AccessAction.CONFIG_DOWNLOAD,
        username="viewer",
        company_id=xero.company_id,
        company_name="Acme Ltd",
        detail=snapshot,
    )
    denial = {"role": "Support lead", "action": "see the access audit"}
    _event(now, AccessAction.PERMISSION_DENIED, username="viewer", path="/audit/", detail=denial)
    _event(
        now,
        AccessAction.LOCKOUT,
        username="runner",
        client_ip="203.0.113.7",
        detail={"failures": 5},
    )
    _event(now, AccessAction.LOGOUT, username="viewer", detail={"timed_out": True})

    page = lead_client.get(reverse("access-audit")).content.decode()

    assert "1,234 rows" in page and "cut short" in page
    assert f'href="{reverse("sync-history")}?range=all&amp;code=5130"' in page
    assert f'href="{reverse("company-detail", args=[xero.company_id])}"' in page
    assert "needs Support lead to see the access audit" in page
    assert "after 5 failed sign-ins" in page and "203.0.113.7" in page
    assert "session timed out" in page


def test_names_typed_at_the_login_page_show_as_text(lead_client, db):
    _event(timezone.now(), AccessAction.LOGIN_FAILED, username="<script>alert(1)</script>")

    page = lead_client.get(reverse("access-audit")).content.decode()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_the_page_filters_by_action_user_and_days(lead_client, db):
    base = datetime(2026, 3, 10, 12, tzinfo=UTC)
    _event(base, AccessAction.CSV_EXPORT, username="viewer", detail={"filter": "", "rows": 1})
    _event(base, AccessAction.LOGIN, username="viewer", path="/accounts/login/")
    later = base + timedelta(days=2)
    _event(later, AccessAction.CSV_EXPORT, username="runner", detail={"filter": "", "rows": 2})

    def shown(query: str) -> list[tuple[str, str]]:
        response = lead_client.get(reverse("access-audit") + "?" + query)
        assert response.status_code == 200
        return [(e.action, e.username) for e in response.context["page"].events]

    assert shown("action=csv_export") == [("csv_export", "runner"), ("csv_export", "viewer")]
    assert shown("user=viewer&action=csv_export") == [("csv_export", "viewer")]
    assert shown("start=2026-03-12&end=2026-03-12") == [("csv_export", "runner")]
    assert shown("end=2026-03-10&user=runner") == []


@pytest.mark.parametrize(
    "query, message",
    [
        ("action=shutdown", "Select a valid choice."),
        ("start=2026-03-12&end=2026-03-10", "The start date must not be after the end date."),
        ("end=9999-12-31", "Enter a date in 2999 or earlier."),
        ("after=bm90LWEtY3Vyc29y", "This page link is not valid; start from the newest."),
    ],
)
def test_an_invalid_filter_is_a_400_that_says_why(lead_client, db, query, message):
    response = lead_client.get(reverse("access-audit") + "?" + query)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_pages_go_back_in_time_without_gaps_or_repeats(lead_client, db):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # Pairs share a moment: the cursor must tell them apart by their order.
    made = [
        _event(start + timedelta(minutes=n // 2), AccessAction.LOCKOUT, username=f"u{n}")
        for n in range(120)
    ]
    seen: list[int] = []
    url = reverse("access-audit") + "?action=lockout"
    while url:
        response = lead_client.get(url)
        assert response.status_code == 200
        seen += [e.pk for e in response.context["page"].events]
        older = response.context["older_query"]
        url = reverse("access-audit") + "?" + older if older else ""

    expected = sorted(made, key=lambda e: (e.at, e.pk), reverse=True)
    assert seen == [e.pk for e in expected]


def test_the_page_costs_the_same_queries_however_long_the_audit(lead_client, db):
    url = reverse("access-audit")
    lead_client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert lead_client.get(url).status_code == 200
        return len(context)

    few = queries()
    AccessEvent.objects.bulk_create(
        AccessEvent(action=AccessAction.LOGIN, username=f"user{n}") for n in range(300)
    )
    assert queries() == few


# --- pruning (retention calls it) ---


def test_prune_deletes_rows_older_than_the_moment_in_batches(db):
    cutoff = datetime(2026, 3, 1, tzinfo=UTC)
    for days in (40, 30, 20, 10, 1):
        _event(cutoff - timedelta(days=days), username=f"old{days}")
    kept = [_event(cutoff), _event(cutoff + timedelta(days=1))]

    assert audit.prune(cutoff, batch=2) == 5

    assert list(AccessEvent.objects.order_by("at")) == kept
    assert audit.prune(cutoff, batch=2) == 0


def test_prune_refuses_an_empty_batch(db):
    with pytest.raises(ValueError, match="batch"):
        audit.prune(timezone.now(), batch=0)
