"""IDs are found wherever they are: a sync, company or transaction ID, or its start."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard.filters import id_range, search_kind, short_id
from dashboard.models import PushItem, Sync, TransactionState
from dashboard.vocabulary import ItemStatus
from tests.support.factories import make_company, make_sync
from tests.support.users import make_user

OLD = timedelta(days=8)  # just outside the default range, the last 7 days


def _history(client, query: str) -> str:
    response = client.get(reverse("sync-history") + "?" + query)
    assert response.status_code == 200
    return response.content.decode()


def _rows(body: str) -> set[str]:
    """The sync IDs of the history table's rows."""
    return set(
        re.findall(
            r'<td class="wide" data-label="Sync ID">'
            r'<a class="mono" href="/syncs/([0-9a-f-]{36})/">',
            body,
        )
    )


def _listed(body: str, kind: str) -> list[str]:
    """The IDs the matches box lists for one kind (company, sync, transaction)."""
    return re.findall(rf'<li data-kind="{kind}">.*?([0-9a-f-]{{36}})', body, re.S)


def _push(sync: Sync, transaction_id: uuid.UUID, status: int, message: str | None = None):
    return PushItem.objects.create(
        sync=sync, transaction_id=transaction_id, status=status, message=message
    )


def _spaced(text: str) -> str:
    """Text as it arrives pasted: upper case, spaces around it and inside it."""
    upper = text.upper()
    return f"  {upper[:4]} {upper[4:11]}  {upper[11:]} "


@pytest.fixture
def ids(db):
    """A sync, a company and a transaction, each last seen outside the default range."""
    company = make_company(name="Acme Ltd")
    other = make_company(name="Globex Inc")
    sync = make_sync(other, code=5130, ago=OLD, items=[(4, "Tax rate missing")])
    recent = make_sync(company, code=2000, ago=timedelta(hours=1))
    old = make_sync(company, code=2000, ago=OLD)
    transaction_id = uuid.uuid4()
    pushed = make_sync(other, code=5130, ago=OLD + timedelta(hours=2))
    _push(pushed, transaction_id, ItemStatus.PUSH_ERROR, "Period closed")
    return {
        "sync": sync,
        "company": company,
        "company_syncs": {recent, old},
        "transaction": transaction_id,
        "pushed": pushed,
    }


def _forms(full: str) -> list[str]:
    """The ways a support person types an ID: whole, dashless, its start, pasted."""
    return [
        full,
        full.upper(),
        full.replace("-", ""),
        full[:8],
        full[:6],
        full[:11],  # "1f6ab1bc-58": dashed where a UUID is
        _spaced(full),
        _spaced(full[:8]),
    ]


@pytest.mark.parametrize("typed", range(8), ids=lambda n: f"form-{n}")
def test_a_sync_id_or_its_start_finds_the_sync_whatever_the_range(viewer_client, ids, typed):
    sync = ids["sync"]
    q = _forms(str(sync.sync_id))[typed]
    body = _history(viewer_client, f"q={quote(q)}")
    assert _listed(body, "sync") == [str(sync.sync_id)]
    assert f'href="/syncs/{sync.sync_id}/"' in body
    # The table keeps the range the page shows, and says what it hides.
    assert _rows(body) == set()
    assert "· Last 7 days" in body
    assert "1 more outside this range" in body
    link = re.search(r'<a href="\?([^"]+)"[^>]*>search all time</a>', body).group(1)
    everything = _history(viewer_client, link.replace("&amp;", "&"))
    assert _rows(everything) == {str(sync.sync_id)}
    assert "· All time" in everything and "outside this range" not in everything


@pytest.mark.parametrize("typed", range(8), ids=lambda n: f"form-{n}")
def test_a_company_id_or_its_start_finds_its_syncs_in_range_and_counts_the_rest(
    viewer_client, ids, typed
):
    company = ids["company"]
    recent, old = sorted(ids["company_syncs"], key=lambda s: s.sync_utc, reverse=True)
    body = _history(viewer_client, f"q={quote(_forms(str(company.company_id))[typed])}")
    assert _listed(body, "company") == [str(company.company_id)]
    assert _rows(body) == {str(recent.sync_id)}
    assert "1 more outside this range" in body
    all_time = _history(viewer_client, f"q={company.company_id}&range=all")
    assert _rows(all_time) == {str(recent.sync_id), str(old.sync_id)}


@pytest.mark.parametrize("typed", range(8), ids=lambda n: f"form-{n}")
def test_a_transaction_id_or_its_start_finds_the_syncs_that_pushed_it(viewer_client, ids, typed):
    transaction_id = str(ids["transaction"])
    body = _history(viewer_client, f"q={quote(_forms(transaction_id)[typed])}&range=all")
    assert _listed(body, "transaction") == [transaction_id]
    assert f'href="/transactions/{transaction_id}/"' in body
    assert _rows(body) == {str(ids["pushed"].sync_id)}
    assert "Outstanding</strong>: last failed in sync" in body


def test_a_custom_range_counts_the_matches_on_both_sides(viewer_client, db):
    company = make_company()
    syncs = [make_sync(company, ago=timedelta(days=days)) for days in (1, 10, 30)]
    day = (timezone.now() - timedelta(days=10)).date()
    body = _history(viewer_client, f"q={company.company_id}&start={day}&end={day}")
    assert _rows(body) == {str(syncs[1].sync_id)}
    assert "2 more outside this range" in body
    assert f"· {day} to {day}" in body


def test_a_prefix_finds_exactly_the_ids_that_start_with_it(viewer_client, db):
    company = make_company()
    inside = ["abcdef00-0000-4000-8000-000000000000", "abcdefff-ffff-4fff-bfff-ffffffffffff"]
    outside = ["abcdeeff-ffff-4fff-bfff-ffffffffffff", "abcdf000-0000-4000-8000-000000000000"]
    for text in inside + outside:
        make_sync(company, sync_id=uuid.UUID(text))
    body = _history(viewer_client, "q=ABCDEF&range=all")
    assert sorted(_listed(body, "sync")) == inside
    assert _rows(body) == set(inside)


def test_five_characters_are_a_name_search_and_the_page_says_so(viewer_client, ids):
    start = str(ids["sync"].sync_id)[:5]
    body = _history(viewer_client, f"q={start}&range=all")
    assert 'data-testid="short-id"' in body
    assert "an ID is looked up from its first 6 characters" in body
    assert 'data-testid="id-matches"' not in body
    assert _rows(body) == set()
    named = make_company(name=f"Shop {start}")
    other = make_sync(named)
    assert _rows(_history(viewer_client, f"q={start}&range=all")) == {str(other.sync_id)}


def test_a_name_made_of_hex_letters_is_still_found_when_no_id_matches(viewer_client, db):
    facade = make_company(name="Facade Studio")
    sync = make_sync(facade)
    body = _history(viewer_client, "q=facade")
    assert "No company, sync or transaction ID starts with <code>facade</code>" in body
    assert _rows(body) == {str(sync.sync_id)}


def test_dashes_where_a_uuid_has_none_make_a_name_search(viewer_client, db):
    assert search_kind("2026-03-31") == "name"
    assert search_kind("1f6ab1bc58-c8") == "name"
    dated = make_company(name="Depot 2026-03-31")
    sync = make_sync(dated)
    body = _history(viewer_client, "q=2026-03-31")
    assert 'data-testid="id-matches"' not in body
    assert _rows(body) == {str(sync.sync_id)}


def test_what_counts_as_an_id():
    full = "1f6ab1bc-58c8-4c1a-a654-86464b065f69"
    assert id_range(full).exact and id_range(" " + full.upper() + " ").exact
    assert id_range("1F6A B1BC").text == "1f6ab1bc"
    assert id_range("1f6ab1bc58").text == "1f6ab1bc-58"
    assert str(id_range("1f6ab1").lower) == "1f6ab100-0000-0000-0000-000000000000"
    assert str(id_range("1f6ab1").upper) == "1f6ab1ff-ffff-ffff-ffff-ffffffffffff"
    assert id_range("1f6ab") is None and short_id("1f6ab") and not short_id("Acme")
    assert id_range(full + "0") is None  # 33 digits: no UUID
    assert id_range("1f6ab1bc-58c8-4c1a-a654-86464b065f6g") is None
    assert search_kind("") == "" and search_kind("Acme Ltd") == "name"


def test_a_transaction_page_lists_every_push_newest_first_with_its_current_state(viewer_client, db):
    company = make_company(name="Acme Ltd")
    transaction_id = uuid.uuid4()
    original = make_sync(company, code=5130, ago=timedelta(days=3))
    first = make_sync(company, code=5130, ago=timedelta(days=2), retry_of=original)
    second = make_sync(company, code=2000, ago=timedelta(days=1), retry_of=first)
    _push(original, transaction_id, ItemStatus.PUSH_ERROR, "Tax rate missing")
    _push(first, transaction_id, ItemStatus.VALIDATION_ERROR, "Still missing")
    _push(second, transaction_id, ItemStatus.COMPLETED)
    response = viewer_client.get(reverse("transaction-detail", args=[transaction_id]))
    assert response.status_code == 200
    body = response.content.decode()
    pushes = re.findall(r'<tr data-testid="push">.*?/syncs/([0-9a-f-]{36})/.*?</tr>', body, re.S)
    assert pushes == [str(s.sync_id) for s in (second, first, original)]
    for status in ("Completed", "ValidationError", "PushError"):
        assert f">{status}</span>" in body
    assert "Tax rate missing" in body and "Still missing" in body
    assert body.count("(a retry)") == 2
    state = re.search(r'data-testid="current-state">(.*?)</dd>', body, re.S).group(1)
    assert "Completed</strong>: completed in sync" in state
    assert str(second.sync_id) in state
    # The history's search by it shows the three syncs, whatever their age.
    assert _rows(_history(viewer_client, f"q={transaction_id}&range=all")) == {
        str(s.sync_id) for s in (original, first, second)
    }


def test_the_recorded_current_state_is_read_when_there_is_one(viewer_client, db):
    company = make_company()
    transaction_id = uuid.uuid4()
    failed = make_sync(company, code=5130, ago=timedelta(days=2))
    done = make_sync(company, code=2000, ago=timedelta(days=1))
    _push(failed, transaction_id, ItemStatus.PUSH_ERROR)
    _push(done, transaction_id, ItemStatus.COMPLETED)
    url = reverse("transaction-detail", args=[transaction_id])
    assert "Completed</strong>: completed in sync" in viewer_client.get(url).content.decode()
    # Ingest's record wins over the pushes (it knows what they alone cannot).
    TransactionState.objects.create(
        company=company,
        transaction_id=transaction_id,
        last_sync=failed,
        last_sync_utc=failed.sync_utc,
        status=ItemStatus.PUSH_ERROR,
        outstanding=True,
    )
    body = viewer_client.get(url).content.decode()
    state = re.search(r'data-testid="current-state">(.*?)</dd>', body, re.S).group(1)
    assert "Outstanding</strong>: last failed in sync" in state
    assert str(failed.sync_id) in state


def test_without_a_record_the_latest_push_is_by_start_then_sync_id(viewer_client, db):
    company = make_company()
    transaction_id = uuid.uuid4()
    started = timezone.now() - timedelta(hours=3)
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])
    # The later sync ID wins a tie, whichever was stored first.
    pending = make_sync(company, code=5000, sync_id=high, sync_utc=started)
    completed = make_sync(company, code=2000, sync_id=low, sync_utc=started)
    _push(pending, transaction_id, ItemStatus.PENDING)
    _push(completed, transaction_id, ItemStatus.COMPLETED)
    body = viewer_client.get(reverse("transaction-detail", args=[transaction_id])).content.decode()
    state = re.search(r'data-testid="current-state">(.*?)</dd>', body, re.S).group(1)
    assert "Outstanding</strong>: left pending in sync" in state
    assert str(high) in state


def test_a_transaction_in_two_companies_is_shown_for_each(viewer_client, db):
    transaction_id = uuid.uuid4()
    for name in ("Acme Ltd", "Globex Inc"):
        _push(make_sync(make_company(name=name)), transaction_id, ItemStatus.COMPLETED)
    body = viewer_client.get(reverse("transaction-detail", args=[transaction_id])).content.decode()
    assert body.count('data-testid="transaction"') == 2
    assert "Acme Ltd" in body and "Globex Inc" in body


def test_the_push_items_tab_links_each_core_id_to_its_transaction(viewer_client, ids):
    item = ids["pushed"].items.get()
    url = reverse("sync-detail", args=[ids["pushed"].sync_id]) + "?tab=items"
    body = viewer_client.get(url).content.decode()
    assert f'href="/transactions/{item.transaction_id}/"' in body


def test_the_transaction_page_needs_a_login_and_a_support_role(client, ids):
    url = reverse("transaction-detail", args=[ids["transaction"]])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    client.force_login(make_user("nobody"))
    assert client.get(url).status_code == 403
    client.force_login(make_user("reader", "Support viewer"))
    assert client.get(url).status_code == 200
    assert client.get(reverse("transaction-detail", args=[uuid.uuid4()])).status_code == 404


def test_found_ids_show_upstream_text_as_text(viewer_client, db):
    hostile = "<script>alert(1)</script>"
    company = make_company(name=hostile)
    sync = make_sync(company, code=5130, items=[(4, hostile)])
    item = sync.items.get()
    pages = [
        reverse("sync-history") + f"?q={sync.sync_id}",
        reverse("sync-history") + f"?q={company.company_id}",
        reverse("sync-history") + f"?q={str(item.transaction_id)[:8]}",
        reverse("transaction-detail", args=[item.transaction_id]),
    ]
    for url in pages:
        body = viewer_client.get(url).content.decode()
        assert hostile not in body, url
        assert "&lt;script&gt;" in body, url
    typed = viewer_client.get(reverse("sync-history") + "?q=%3Cb%3Efacade").content.decode()
    assert "<b>facade" not in typed


def test_the_csv_export_finds_ids_like_the_page(viewer_client, ids):
    url = reverse("sync-history-csv") + f"?q={quote(_spaced(str(ids['transaction'])))}&range=all"
    body = b"".join(viewer_client.get(url).streaming_content).decode()
    assert str(ids["pushed"].sync_id) in body
    assert len(body.strip().splitlines()) == 2


def _queries(client, url: str) -> int:
    client.get(url)  # the session's first page also reads the user's time zone into it
    cache.clear()  # each measured request starts cold (the platform list is cached)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize("page", ["history", "transaction"])
def test_queries_do_not_grow_with_the_pushes_found(viewer_client, db, page):
    def build(n: int) -> uuid.UUID:
        transaction_id = uuid.uuid4()
        for i in range(n):
            sync = make_sync(make_company(), code=5130, ago=timedelta(days=i + 1))
            _push(sync, transaction_id, ItemStatus.PUSH_ERROR, f"error {i}")
        return transaction_id

    def url(transaction_id: uuid.UUID) -> str:
        if page == "history":
            return reverse("sync-history") + f"?q={str(transaction_id)[:8]}"
        return reverse("transaction-detail", args=[transaction_id])

    few = _queries(viewer_client, url(build(1)))
    many = _queries(viewer_client, url(build(12)))
    assert few == many
