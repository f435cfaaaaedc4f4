"""The sync page: its tabs, the Overview, the Config tab's snapshot, the items' status filter,
the links out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils.html import escape

from dashboard import sync_config
from dashboard.models import Sync
from dashboard.vocabulary import note_for
from tests.support.factories import make_company, make_config, make_sync, problem_of

XSS = "<script>alert(1)</script>"
CLOSED = "The account period has closed."


def _page(client, sync: Sync, query: str = "", status: int = 200) -> str:
    response = client.get(reverse("sync-detail", args=[sync.sync_id]) + query)
    assert response.status_code == status
    return response.content.decode()


def _tabs(body: str) -> list[tuple[str, str, str]]:
    """(label, href, aria-selected) of each tab, in order."""
    tablist = re.search(r'<div class="tabs" role="tablist"[^>]*>(.*?)</div>', body, re.S)
    assert tablist, "no tab list"
    return [
        (re.sub(r"\s+", " ", label).strip(), href.replace("&amp;", "&"), selected)
        for href, selected, label in re.findall(
            r'<a role="tab" id="tab-\w+" href="([^"]*)"\s+'
            r'aria-selected="(true|false)"[^>]*>(.*?)</a>',
            tablist.group(1),
            re.S,
        )
    ]


@pytest.fixture
def failed(db):
    company = make_company(name="Acme Ltd", platform_name="Xero")
    sync = make_sync(
        company,
        code=5130,
        ago=timedelta(hours=3),
        items=[(3, None), (3, None), (4, CLOSED), (2, "Tax rate missing"), (1, None)],
        error_message=CLOSED,
    )
    return sync


# --- the tabs ---


@pytest.mark.parametrize(
    ("query", "chosen"), [("", "Overview"), ("?tab=items", "Push items"), ("?tab=config", "Config")]
)
def test_the_tabs_are_a_tab_list_of_links_above_their_panel(viewer_client, failed, query, chosen):
    body = _page(viewer_client, failed, query)
    here = reverse("sync-detail", args=[failed.sync_id])
    tabs = _tabs(body)
    assert [(label, href) for label, href, _ in tabs] == [
        ("Overview", here),
        ("Push items (5)", f"{here}?tab=items"),
        ("Config", f"{here}?tab=config"),
    ]
    assert [label for label, _, selected in tabs if selected == "true"] == [
        next(label for label, _, _ in tabs if label.startswith(chosen))
    ]
    key = {"Overview": "overview", "Push items": "items", "Config": "config"}[chosen]
    # Only the chosen tab names the panel; the panel names the chosen tab; it comes after the list.
    assert body.count('aria-controls="tab-panel"') == 1
    assert re.search(rf'id="tab-{key}"[^>]*aria-selected="true" aria-controls="tab-panel"', body)
    panel = f'role="tabpanel" id="tab-panel" aria-labelledby="tab-{key}"'
    assert panel in body
    assert body.index('role="tablist"') < body.index(panel)


def test_an_unknown_tab_shows_the_overview(viewer_client, failed):
    body = _page(viewer_client, failed, "?tab=%3Cx%3E")
    assert 'aria-labelledby="tab-overview"' in body and "<x>" not in body


# --- Overview ---


def test_the_overview_holds_the_syncs_summary(viewer_client, failed):
    problem = problem_of(failed, failed.items.get(status=4).transaction_id)
    retry = make_sync(failed.company, code=5130, items=[(4, CLOSED)], retry_of=failed)
    body = _page(viewer_client, failed)
    here = reverse("sync-detail", args=[failed.sync_id])
    panel = body[body.index('role="tabpanel"') :]
    assert 'id="sync-status"' in panel
    assert f"<strong>{failed.status_label}</strong>" in panel
    note = note_for(failed.status_code)
    assert escape(note.meaning) in panel and escape(note.next_step) in panel
    assert f"{failed.sync_utc:%Y-%m-%d %H:%M:%S}" in panel
    assert f"{failed.completed_at:%Y-%m-%d %H:%M:%S}" in panel
    assert "<dt>Duration</dt><dd>1m 30s</dd>" in panel
    assert "from Sync for Expenses to Xero" in panel
    counts = re.search(r'data-testid="item-counts">(.*?)</dd>', panel, re.S).group(1)
    assert (
        f'<a href="{here}?tab=items">5<span class="visually-hidden"> push items</span></a>'
        in counts
    )
    assert f'href="{here}?tab=items&amp;status=failed">2 failed</a>' in counts
    assert f'href="{here}?tab=items&amp;status=completed">2 completed</a>' in counts
    assert f'href="{here}?tab=items&amp;status=pending">1 pending</a>' in counts
    assert "unknown" not in counts  # offered only when some item has it
    assert counts.rstrip().endswith("1 pending</a>")
    assert f"Problem #{problem.pk}" in panel
    chain = re.search(r'data-testid="retry-chain">(.*?)</div>', panel, re.S).group(1)
    assert reverse("sync-detail", args=[retry.sync_id]) in chain


def test_a_sync_never_retried_says_so(viewer_client, db):
    sync = make_sync(make_company(), code=2000, items=[(3, None)])
    body = _page(viewer_client, sync)
    assert "Not a retry, and not retried." in body


# --- Config ---


def _config(client, sync: Sync) -> str:
    body = _page(client, sync, "?tab=config")
    return body[body.index('data-testid="config"') :]


def _download_href(company, snapshot) -> str:
    return reverse("config-download", args=[company.company_id, snapshot.pk])


def test_the_config_is_the_last_one_fetched_before_the_sync_started(viewer_client, db):
    company = make_company()
    make_config(company, {"bankAccount": {"id": "10"}}, ago=timedelta(days=5))
    before = make_config(company, {"bankAccount": {"id": "89"}}, ago=timedelta(days=2))
    sync = make_sync(company, code=5130, ago=timedelta(days=1))
    current = make_config(company, {"bankAccount": {"id": "90"}}, ago=timedelta(hours=1))
    body = _config(viewer_client, sync)
    which = re.search(r'data-testid="config-which">(.*?)</p>', body, re.S).group(1)
    assert "<strong>Last seen before this sync</strong>, fetched at" in which
    assert f"{before.fetched_at:%Y-%m-%d %H:%M:%S}" in which
    assert f"The current one was fetched at {current.fetched_at:%Y-%m-%d %H:%M:%S}" in which
    assert (
        f'href="{_download_href(company, before)}" download data-testid="config-download"' in body
    )
    assert f'href="{_download_href(company, current)}" download>download the current one' in body
    diff = re.search(r'data-testid="config-diff">(.*?)</table>', body, re.S).group(1)
    assert re.search(
        r'<span class="badge change-changed">changed</span></td><th scope="row">Bank account</th>'
        r'\s*<td><span class="mono">ID 89</span></td>\s*<td><span class="mono">ID 90</span></td>',
        diff,
    )


def test_with_none_fetched_before_the_earliest_after_is_shown_and_labelled(viewer_client, db):
    company = make_company()
    sync = make_sync(company, code=5130, ago=timedelta(days=3))
    first_after = make_config(company, {"bankAccount": {"id": "1"}}, ago=timedelta(days=2))
    make_config(company, {"bankAccount": {"id": "2"}, "supplier": {"id": "7"}}, ago=timedelta(1))
    body = _config(viewer_client, sync)
    which = re.search(r'data-testid="config-which">(.*?)</p>', body, re.S).group(1)
    assert "<strong>None fetched before this sync.</strong>" in which
    assert "Shown instead: the earliest one after it" in which
    assert f"{first_after.fetched_at:%Y-%m-%d %H:%M:%S}" in which
    assert f'href="{_download_href(company, first_after)}" download data-testid' in body
    diff = re.search(r'data-testid="config-diff">(.*?)</table>', body, re.S).group(1)
    assert 'change-changed">changed</span></td><th scope="row">Bank account</th>' in diff
    assert 'change-added">added</span></td><th scope="row">Supplier</th>' in diff


def test_a_config_equal_to_the_current_one_shows_no_differences(viewer_client, db):
    company = make_company()
    config = {"bankAccount": {"id": "89"}, "supplier": {"id": "124"}}
    make_config(company, config, ago=timedelta(days=2))
    sync = make_sync(company, code=2000, ago=timedelta(days=1))
    body = _config(viewer_client, sync)
    assert "It is also the company's current configuration." in body
    assert "Compared with the current configuration" not in body
    assert "config-diff" not in body and "download the current one" not in body


def test_a_config_that_came_back_counts_as_current(viewer_client, db):
    company = make_company()
    make_config(company, {"bankAccount": {"id": "1"}}, ago=timedelta(days=4))
    sync = make_sync(company, code=2000, ago=timedelta(days=3))
    make_config(company, {"bankAccount": {"id": "2"}}, ago=timedelta(days=2))
    make_config(company, {"bankAccount": {"id": "1"}}, ago=timedelta(days=1))  # changed back
    body = _config(viewer_client, sync)
    assert "It is also the company's current configuration." in body
    assert "config-diff" not in body


def test_the_differences_name_what_was_added_removed_and_changed():
    before = {"bankAccount": {"id": "89"}, "customer": {"id": "140"}, "flags": [True]}
    after = {"bankAccount": {"id": "90"}, "supplier": {"id": "7", "supplierName": "Acme"}}
    changes = [
        (c.kind, c.label, c.before and c.before.value, c.after and c.after.value)
        for c in sync_config.differences(before, after)
    ]
    assert changes == [
        ("changed", "Bank account", "89", "90"),
        ("added", "Supplier", None, "7"),
        ("removed", "Customer", "140", None),
        ("removed", "Flags \u203a #1", "true", None),
    ]
    assert sync_config.differences(before, before) == []


def test_names_show_beside_ids_where_the_config_gives_them(viewer_client, db):
    company = make_company()
    make_config(
        company,
        {
            "bankAccount": {"id": "89", "accountName": "Business Current"},
            "supplier": {"id": "124"},
            "taxRates": [{"id": "23_Bills", "name": "20% Bill tax", "effectiveTaxRate": 20}],
        },
        ago=timedelta(days=2),
    )
    sync = make_sync(company, code=2000, ago=timedelta(days=1))
    body = _config(viewer_client, sync)
    settings = re.search(r'data-testid="config-settings">(.*?)</table>', body, re.S).group(1)
    rows = {
        path: (re.sub(r"\s+", " ", label).strip(), re.sub(r"\s+", " ", value).strip())
        for label, path, value in re.findall(
            r'<th scope="row">(.*?) <span class="mono muted path">(.*?)</span></th>'
            r"\s*<td>(.*?)</td>",
            settings,
            re.S,
        )
    }
    assert rows["bankAccount"] == (
        "Bank account",
        '<strong class="name">Business Current</strong> <span class="mono muted">ID 89</span>',
    )
    assert rows["taxRates[0]"] == (
        "Tax rates \u203a #1",
        '<strong class="name">20% Bill tax</strong> <span class="mono muted">ID 23_Bills</span>',
    )
    assert rows["taxRates[0].effectiveTaxRate"] == (
        "Tax rates \u203a #1 \u203a Effective tax rate",
        '<span class="mono">20</span>',
    )
    # No name given: the ID alone, and the page says why.
    assert rows["supplier"] == ("Supplier", '<span class="mono">ID 124</span>')
    assert "a name shows beside an ID where the configuration gives one" in body


def test_a_company_without_a_config_says_so(viewer_client, failed):
    body = _config(viewer_client, failed)
    assert "No configuration has been fetched for this company yet" in body


def test_the_config_tab_reads_the_same_few_rows_however_many_snapshots(
    viewer_client, db, django_assert_max_num_queries
):
    company = make_company()
    sync = make_sync(company, code=2000, ago=timedelta(days=30))
    for day in range(60, 0, -1):
        make_config(company, {"bankAccount": {"id": str(day)}}, ago=timedelta(days=day))
    url = reverse("sync-detail", args=[sync.sync_id]) + "?tab=config"
    viewer_client.get(url)
    with django_assert_max_num_queries(16):
        assert viewer_client.get(url).status_code == 200


# --- Push items ---


def test_the_items_filter_by_one_status_with_counts(viewer_client, failed):
    here = reverse("sync-detail", args=[failed.sync_id])
    body = _page(viewer_client, failed, "?tab=items")
    assert "<select" not in body
    links = re.findall(
        r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#items-panel"[^>]*?( aria-current="true")?>'
        r'(\w+) <span class="n">(\d+)</span></a>',
        re.search(r'data-testid="status-filter">(.*?)</nav>', body, re.S).group(1),
    )
    assert [
        (href.replace("&amp;", "&"), bool(cur), label, int(n)) for href, cur, label, n in links
    ] == [
        (f"{here}?tab=items", True, "All", 5),
        (f"{here}?tab=items&status=failed", False, "Failed", 2),
        (f"{here}?tab=items&status=completed", False, "Completed", 2),
        (f"{here}?tab=items&status=pending", False, "Pending", 1),
    ]
    failed_only = _page(viewer_client, failed, "?tab=items&status=failed")
    statuses = re.findall(r'<span class="badge item-([\w-]+)">', failed_only)
    assert sorted(statuses) == ["push-error", "validation-error"]
    assert re.search(r'aria-current="true">Failed <span class="n">2</span>', failed_only)
    # The search keeps the filter.
    assert '<input type="hidden" name="status" value="failed">' in failed_only


def test_the_unknown_status_is_offered_when_an_item_has_it(viewer_client, db):
    sync = make_sync(make_company(), code=5130, items=[(0, None), (4, CLOSED)])
    body = _page(viewer_client, sync, "?tab=items")
    assert 'Unknown <span class="n">1</span>' in body
    unknown = _page(viewer_client, sync, "?tab=items&status=unknown")
    assert re.findall(r'<span class="badge item-([\w-]+)">', unknown) == ["unknown"]
    # Chosen by hand where no item has it: shown, chosen, empty.
    other = make_sync(make_company(), code=2000, items=[(3, None)])
    empty = _page(viewer_client, other, "?tab=items&status=unknown")
    assert 'aria-current="true">Unknown <span class="n">0</span>' in empty
    assert "No items match." in empty


def test_the_filter_and_the_search_go_together(viewer_client, failed):
    body = _page(viewer_client, failed, "?tab=items&status=failed&q=tax")
    assert body.count('<td class="mono" data-label="Core ID">') == 1 and "Tax rate missing" in body
    # The filter's links keep the search.
    assert "?tab=items&amp;status=completed&amp;q=tax" in body
    by_type = _page(viewer_client, failed, "?tab=items&status=completed&q=directcosts")
    assert by_type.count('<td class="mono" data-label="Core ID">') == 2


def test_an_unknown_status_filter_is_a_clear_400(viewer_client, failed):
    body = _page(viewer_client, failed, "?tab=items&status=%3Cb%3Ebroken", status=400)
    assert "“&lt;b&gt;broken” is not a status filter" in body
    assert "<b>broken" not in body


def test_an_htmx_filter_answers_with_the_items_panel_alone(viewer_client, failed):
    response = viewer_client.get(
        reverse("sync-detail", args=[failed.sync_id]) + "?tab=items&status=pending",
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="items-panel">')
    assert body.count('<td class="mono" data-label="Core ID">') == 1 and "<html" not in body
    assert response["Vary"] and "HX-Request" in response["Vary"]


# --- untrusted text, links out ---


def test_hostile_strings_are_text_on_every_tab(viewer_client, db):
    company = make_company(name=f"Evil {XSS}", platform_name=f"P {XSS}")
    make_config(
        company,
        {
            "bankAccount": {"id": XSS, "accountName": XSS},
            f"{XSS}key": {"note": XSS},
        },
        ago=timedelta(days=2),
    )
    sync = make_sync(company, code=5130, ago=timedelta(days=1), items=[(4, XSS)], error_message=XSS)
    make_config(company, {"bankAccount": {"id": "1", "accountName": XSS}}, ago=timedelta(hours=1))
    for query in ("", "?tab=items", f"?tab=items&q={XSS}", "?tab=config"):
        body = _page(viewer_client, sync, query)
        assert "<script>alert" not in body, query
        assert escape(XSS) in body, query


def test_the_company_links_to_the_codat_portal(viewer_client, failed, settings):
    body = _page(viewer_client, failed)
    href = f"https://app.codat.io/companies/{failed.company.company_id}"
    assert (
        f'<a href="{href}" target="_blank" rel="noopener noreferrer" data-testid="portal-link">'
        in body
    )
    settings.CODAT_PORTAL_URL = "https://portal.example.com/eu"
    body = _page(viewer_client, failed, "?tab=config")
    assert f'href="https://portal.example.com/eu/companies/{failed.company.company_id}"' in body
    # Every link that leaves the site opens a new tab without a window.opener.
    for anchor in re.findall(r"<a [^>]*href=\"https?://[^\"]*\"[^>]*>", body):
        assert 'target="_blank" rel="noopener noreferrer"' in anchor, anchor
