"""A sync's transactions, page by page: the one-query path answers as the full one."""

from __future__ import annotations

import uuid

from sandbox import bodies
from sandbox import models as sb


def test_pages_of_a_sync_match_its_items(api, small_estate):
    sync = sb.Sync.objects.filter(item_count__gte=5).select_related("company").first()
    assert sync is not None
    path = f"/companies/{sync.company.company_id}/sync/expenses/syncs/{sync.sync_id}/transactions"
    items = [bodies.transaction_body(i) for i in sync.items.order_by("position")]
    pages = -(-len(items) // 2)

    for number in range(1, pages + 1):
        body = api.get(path, params={"page": number, "pageSize": 2}).json()
        assert body["results"] == items[(number - 1) * 2 : number * 2]
        assert body["totalResults"] == len(items)
        assert body["pageNumber"] == number and body["pageSize"] == 2
        assert ("next" in body["_links"]) == (number < pages)
        assert body["_links"]["current"]["href"] == f"{path}?page={number}&pageSize=2"

    beyond = api.get(path, params={"page": pages + 1, "pageSize": 2}).json()
    assert beyond["results"] == [] and beyond["totalResults"] == len(items)
    # The path names the IDs as the API writes them, whatever case was asked.
    upper = path.replace(str(sync.sync_id), str(sync.sync_id).upper())
    assert api.get(upper).json()["_links"]["self"]["href"] == path


def test_the_errors_are_those_of_the_full_path(api, small_estate):
    sync = sb.Sync.objects.select_related("company").first()
    company = sync.company.company_id
    base = f"/companies/{company}/sync/expenses/syncs"
    assert api.get(f"{base}/{sync.sync_id}/transactions?pageSize=0").status_code == 400
    assert api.get(f"{base}/{uuid.uuid4()}/transactions").status_code == 404
    assert api.get(f"{base}/not-a-uuid/transactions").status_code == 404
    other = f"/companies/{uuid.uuid4()}/sync/expenses/syncs/{sync.sync_id}/transactions"
    answer = api.get(other + "?pageSize=0")
    # An unknown company is a 404 even when the paging is also wrong.
    assert answer.status_code == 404 and "Company" in answer.json()["error"]
