"""The CSV export's row cap: above `CSV_EXPORT_MAX_ROWS` syncs, only a Support lead exports."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from dashboard.models import AccessEvent
from dashboard.vocabulary import AccessAction

# The views' estate holds six syncs over all time, two of them at Acme Ltd
# in the last week (and one failed with 5130).
ALL = "range=all"
ACME_WEEK = "range=7d&q=Acme"


@pytest.fixture
def cap(settings):
    settings.CSV_EXPORT_MAX_ROWS = 2
    return settings


def export(client, query: str):
    return client.get(reverse("sync-history-csv") + "?" + query)


def rows_of(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_above_the_cap_a_viewer_is_refused_and_told_why(viewer_client, estate, cap):
    response = export(viewer_client, ALL)

    assert response.status_code == 403
    page = response.content.decode()
    assert "You need the Support lead role to export more than 2 syncs at once." in page
    assert "This selection holds more than 2 syncs. Narrow the filters" in page
    assert "add you to the <strong>Support lead</strong> group" in page
    assert "Content-Disposition" not in response


def test_the_refusal_is_audited_with_the_filter_and_nothing_is_exported(viewer_client, estate, cap):
    export(viewer_client, ALL)

    [denied] = AccessEvent.objects.filter(action=AccessAction.PERMISSION_DENIED)
    assert denied.path == reverse("sync-history-csv") + "?" + ALL
    assert denied.detail == {"role": "Support lead", "action": "export more than 2 syncs at once"}
    assert not AccessEvent.objects.filter(action=AccessAction.CSV_EXPORT).exists()


def test_a_runner_is_refused_too(runner_client, estate, cap):
    assert export(runner_client, ALL).status_code == 403


def test_up_to_the_cap_a_viewer_exports(viewer_client, estate, cap):
    response = export(viewer_client, ACME_WEEK)

    assert response.status_code == 200
    assert len(rows_of(response)) == 2


@pytest.mark.parametrize("who", ["lead", "admin_user"])
def test_above_the_cap_a_lead_or_an_admin_exports_everything(client, estate, cap, request, who):
    client.force_login(request.getfixturevalue(who))

    response = export(client, ALL)

    assert response.status_code == 200
    assert len(rows_of(response)) == 6
    [event] = AccessEvent.objects.filter(action=AccessAction.CSV_EXPORT)
    assert (event.detail["rows"], event.detail["finished"]) == (6, True)


def test_the_history_page_says_the_cap_to_those_it_binds(client, viewer, lead, estate, cap):
    hint = "One export holds at most 2 syncs; more needs the Support lead role"
    client.force_login(viewer)
    assert hint in client.get(reverse("sync-history") + "?" + ALL).content.decode()
    client.force_login(lead)
    assert hint not in client.get(reverse("sync-history") + "?" + ALL).content.decode()
