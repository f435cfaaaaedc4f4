"""The header's jump: any ID (or its first 8+ digits) or a company name, straight to its page."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.urls import reverse

from dashboard.models import PushItem
from dashboard.vocabulary import ItemStatus
from tests.support.factories import make_company, make_sync
from tests.support.html_policy import inline_code
from tests.views.test_csp import STRICT, _policy

JUMP = reverse("jump")


def _jump(client, q: str):
    return client.get(JUMP + "?q=" + quote(q))


def _spaced(text: str) -> str:
    """Text as it arrives pasted: upper case, spaces around it."""
    return f"  {text.upper()} "


def _kinds(body: str) -> list[str]:
    return re.findall(r'<tr data-kind="(\w+)">', body)


@pytest.fixture
def things(db):
    """A company, a sync of another company (long ago) and a transaction it pushed."""
    acme = make_company(name="Acme Ltd", platform_name="Xero")
    globex = make_company(name="Globex Inc", platform_name="QuickBooks Online")
    old = make_sync(globex, code=5130, ago=timedelta(days=400), items=[(4, "Period closed")])
    return {
        "acme": acme,
        "sync": old,
        "transaction": old.items.get().transaction_id,
    }


@pytest.mark.parametrize("form", ["whole", "upper", "dashless", "prefix-8", "prefix-13", "pasted"])
@pytest.mark.parametrize("kind", ["sync", "company", "transaction"])
def test_an_id_or_its_first_8_digits_goes_straight_to_its_page(viewer_client, things, kind, form):
    full = {
        "sync": str(things["sync"].sync_id),
        "company": str(things["acme"].company_id),
        "transaction": str(things["transaction"]),
    }[kind]
    typed = {
        "whole": full,
        "upper": full.upper(),
        "dashless": full.replace("-", ""),
        "prefix-8": full[:8],
        "prefix-13": full[:13],  # "1f6ab1bc-58c8": dashed where a UUID is
        "pasted": _spaced(full[:8]),
    }[form]
    response = _jump(viewer_client, typed)
    assert response.status_code == 302
    assert (
        response["Location"]
        == {
            "sync": reverse("sync-detail", args=[things["sync"].sync_id]),
            "company": reverse("company-detail", args=[things["acme"].company_id]),
            "transaction": reverse("transaction-detail", args=[things["transaction"]]),
        }[kind]
    )
    assert viewer_client.get(response["Location"]).status_code == 200


def test_a_prefix_shared_by_several_ids_lists_them_grouped_by_kind(viewer_client, db):
    def at(prefix: int, n: int) -> uuid.UUID:
        return uuid.UUID(int=(prefix << 96) + n)

    acme = make_company(name="Acme Ltd", platform_name="Xero", company_id=at(0xABCDEF01, 0))
    sync = make_sync(acme, code=5130, sync_id=at(0xABCDEF01, 1))
    other = make_sync(acme, code=2000, sync_id=at(0xABCDEF01, 2))
    pushed = make_sync(acme, code=2000)
    PushItem.objects.create(
        sync=pushed, transaction_id=at(0xABCDEF01, 3), status=ItemStatus.COMPLETED
    )
    make_sync(acme, sync_id=at(0xABCDEF02, 1))  # not this prefix
    response = _jump(viewer_client, "ABCDEF01")
    assert response.status_code == 200
    body = response.content.decode()
    assert _kinds(body) == ["company", "sync", "sync", "transaction"]
    assert "4 matches" in body and "IDs starting with <code>abcdef01</code>" in body
    for shown in (sync.sync_id, other.sync_id, acme.company_id):
        assert str(shown) in body
    # Enough to choose: the status of each sync, its company and platform.
    syncs = body.split('data-testid="jump-syncs"')[1].split("</section>")[0]
    assert "cat-failed" in syncs and "Acme Ltd" in syncs and "Xero" in syncs


def test_a_name_that_several_companies_share_lists_them_with_their_platforms(viewer_client, db):
    make_company(name="Acme Ltd", platform_name="Xero")
    make_company(name="ACME Holdings", platform_name="QuickBooks Online")
    make_company(name="Globex Inc")
    response = _jump(viewer_client, "acme")
    assert response.status_code == 200
    body = response.content.decode()
    assert _kinds(body) == ["company", "company"]
    assert body.index("ACME Holdings") < body.index("Acme Ltd")
    assert "QuickBooks Online" in body and "companies whose name contains it" in body


def test_a_name_only_one_company_has_goes_to_its_page(viewer_client, things):
    response = _jump(viewer_client, " globex ")
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "company-detail", args=[things["sync"].company.company_id]
    )


def test_hex_letters_that_name_no_id_are_read_as_a_name(viewer_client, db):
    facade = make_company(name="Cafe Deadbeef")
    response = _jump(viewer_client, "deadbeef")
    assert response["Location"] == reverse("company-detail", args=[facade.company_id])


def test_fewer_than_8_digits_are_a_name_search_and_the_page_says_so(viewer_client, things):
    start = str(things["sync"].sync_id)[:7]
    response = _jump(viewer_client, start)
    assert response.status_code == 404
    body = response.content.decode()
    assert "an ID is looked up from its first 8 characters" in body
    assert str(things["sync"].sync_id) not in body


def test_nothing_found_says_so_with_the_query_echoed(viewer_client, things):
    missing = "0" * 8
    response = _jump(viewer_client, missing)
    assert response.status_code == 404
    body = response.content.decode()
    assert 'data-testid="jump-none"' in body
    assert "no company, sync or transaction ID starts with <code>00000000</code>" in body
    assert f'value="{missing}"' in body  # the field keeps it, to correct it


def test_hostile_input_is_shown_as_text(viewer_client, things):
    response = _jump(viewer_client, '<script>alert("x")</script>')
    assert response.status_code == 404
    body = response.content.decode()
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert inline_code(body) == []


def test_very_long_input_is_refused_clearly_not_searched(viewer_client, things):
    response = _jump(viewer_client, "<b>" + "a" * 5000)
    assert response.status_code == 400
    body = response.content.decode()
    assert "That search is 5,003 characters long" in body
    refusal = body.split('data-testid="jump-refused"')[1].split("</p>")[0]
    assert "It began “&lt;b&gt;aaa" in refusal and "a" * 200 not in refusal


def test_an_empty_search_asks_for_one(viewer_client, db):
    response = _jump(viewer_client, "   ")
    assert response.status_code == 200
    assert 'data-testid="jump-empty"' in response.content.decode()


def test_every_page_has_the_field_and_its_script_under_the_policy(viewer_client, things):
    response = viewer_client.get(reverse("sync-history"))
    body = response.content.decode()
    assert re.search(r'<form method="get" action="/find/"[^>]*role="search"', body)
    assert 'name="q" id="jump-q"' in body and "data-jump-field" in body
    assert '<script src="/static/js/jump.js" defer></script>' in body
    assert _policy(response["Content-Security-Policy"]) == STRICT
    assert inline_code(body) == []
    script = viewer_client.get("/static/js/jump.js")
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
    source = b"".join(script.streaming_content).decode()
    assert 'event.key !== "/"' in source and "data-jump-field" in source


def test_someone_without_a_role_gets_no_field_and_no_jump(client, db):
    from tests.support.users import make_user

    client.force_login(make_user("nobody"))
    assert _jump(client, "acme").status_code == 403
    assert 'id="jump-q"' not in client.get(reverse("password_change")).content.decode()


def test_a_jump_reads_a_bounded_number_of_queries(
    viewer_client, things, django_assert_max_num_queries
):
    make_company(name="Acme Two")
    with django_assert_max_num_queries(12):
        assert _jump(viewer_client, "acme").status_code == 200
    with django_assert_max_num_queries(12):
        assert _jump(viewer_client, str(things["sync"].sync_id)[:8]).status_code == 302
