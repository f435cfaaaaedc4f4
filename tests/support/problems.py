"""Problems built through the mirror's own upkeep (factories -> current state -> problems).

`shared_syncs()`: an estate where one problem's items share syncs with others'.
Its causes are plain sentences (no IDs, numbers or quotes), so any normaliser
keeps each one as it is and puts each in a problem of its own.

`problem_estate()` makes four causes across five companies:

- `closed`: 5130 "period closed", on Xero, at three companies (one item each);
- `tax`: 4000 "tax rate missing", on QuickBooks Online, one company, five items;
- `amount`: 5120 "amount invalid", on Xero, two companies (two items at one);
- `deauth`: 4220 "de-authorized", on Sage, one company with a reconnect link;

each keyed by name to its `Problem`, with the companies under `companies`.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse

from dashboard.models import (
    BulkRetry,
    Company,
    Problem,
    ProblemCompany,
    Sync,
    TransactionState,
)
from dashboard.vocabulary import ACTIVE_PROBLEM_STATES, ItemStatus
from tests.support.factories import make_company, make_sync

CLOSED = "The account period has closed."
TAX = "Tax rate is not valid for this account."
ARCHIVED = "Supplier is archived."
FAILED = ItemStatus.PUSH_ERROR
COMPLETED = ItemStatus.COMPLETED


def open_problems_by_company() -> dict[int, int]:
    """Each company's open or regressed problems, counted from the shares (0s left out)."""
    counted = Counter(
        ProblemCompany.objects.filter(problem__state__in=ACTIVE_PROBLEM_STATES).values_list(
            "company_id", flat=True
        )
    )
    return dict(counted)


def assert_open_problems_counted() -> None:
    """Every company's `problems_open` is what its shares in open problems say."""
    stored = dict(Company.objects.filter(problems_open__gt=0).values_list("pk", "problems_open"))
    assert stored == open_problems_by_company()


def problem_of(company: Company, transaction_id: uuid.UUID) -> Problem:
    state = TransactionState.objects.get(company=company, transaction_id=transaction_id)
    assert state.outstanding and state.problem is not None
    return state.problem


def failed_sync(company: Company, *causes: str, ago: float, **fields) -> Sync:
    """An original sync (code 5130) whose items failed with these causes, one item each."""
    return make_sync(
        company,
        code=5130,
        items=[(FAILED, cause) for cause in causes],
        ago=timedelta(hours=ago),
        error_message="Some items could not be pushed.",
        **fields,
    )


def retry_of(original: Sync, pushed: dict[uuid.UUID, str | None], *, ago: float) -> Sync:
    """A retry of `original` pushing these transactions: each failed again with its cause,
    or completed (None)."""
    failed = any(cause is not None for cause in pushed.values())
    return make_sync(
        original.company,
        code=5130 if failed else 2000,
        items=[(FAILED if cause else COMPLETED, cause) for cause in pushed.values()],
        transaction_ids=list(pushed),
        ago=timedelta(hours=ago),
        retry_of=original,
    )


def tids(sync: Sync) -> list[uuid.UUID]:
    return list(sync.items.order_by("pk").values_list("transaction_id", flat=True))


@dataclass
class Shared:
    """The estate: problem `closed` whose items share syncs with `tax` and `archived` items."""

    companies: list[Company]
    closed: Problem
    tax: Problem
    archived: Problem
    syncs: dict[str, Sync] = field(default_factory=dict)
    items: dict[str, uuid.UUID] = field(default_factory=dict)


def shared_syncs() -> Shared:
    """Two companies; "closed" has 5 outstanding items in 4 chains.

    - o1: closed p1, p2 and tax q1 — names o1; q1 goes along.
    - o2: tax q2, q3 only — not named.
    - o3: closed p3, tax q4, both failed again in r3 — names r3 (not o3); q4 goes along.
    - o5: closed p5, tax q5; r5 re-pushed q5 only, which failed again — names o5 (not r5,
      which a retry of the whole chain would name); q5, still outstanding in o5, goes along.
    - o6 (the second company): closed p6 and archived c1 — names o6; c1 goes along.
    - o7: closed p7, completed since by r7 — nothing to retry.
    """
    first, second = make_company(name="Acme Ltd"), make_company(name="Globex Inc")
    s: dict[str, Sync] = {}
    s["o1"] = failed_sync(first, CLOSED, CLOSED, TAX, ago=10)
    s["o2"] = failed_sync(first, TAX, TAX, ago=9)
    s["o3"] = failed_sync(first, CLOSED, TAX, ago=8)
    p3, q4 = tids(s["o3"])
    s["r3"] = retry_of(s["o3"], {p3: CLOSED, q4: TAX}, ago=7)
    s["o5"] = failed_sync(first, CLOSED, TAX, ago=6)
    p5, q5 = tids(s["o5"])
    s["r5"] = retry_of(s["o5"], {q5: TAX}, ago=5)
    s["o6"] = failed_sync(second, CLOSED, ARCHIVED, ago=4)
    s["o7"] = failed_sync(second, CLOSED, ago=3)
    (p7,) = tids(s["o7"])
    s["r7"] = retry_of(s["o7"], {p7: None}, ago=2)
    p1, p2, q1 = tids(s["o1"])
    p6, c1 = tids(s["o6"])
    items = {"p1": p1, "p2": p2, "q1": q1, "p3": p3, "q4": q4, "p5": p5, "q5": q5}
    items |= {"p6": p6, "c1": c1, "p7": p7}
    return Shared(
        companies=[first, second],
        closed=problem_of(first, p1),
        tax=problem_of(first, q1),
        archived=problem_of(second, c1),
        syncs=s,
        items=items,
    )


def open_problem_preview(client: Client, problem: Problem, key: str | None = None):
    """Press the problem's retry button; returns the response (302 to the preview when opened)."""
    return client.post(
        reverse("problem-retry", args=[problem.pk]), {"key": key or str(uuid.uuid4())}
    )


def opened(response) -> BulkRetry:
    assert response.status_code == 302, response.content.decode()[:2000]
    found = re.search(r"/retries/bulk/(\d+)/review/$", response["Location"])
    assert found, response["Location"]
    return BulkRetry.objects.get(pk=int(found.group(1)))


def problem_estate() -> dict[str, Any]:
    acme = make_company(name="Acme Ltd", platform_name="Xero")
    bolt = make_company(name="Bolt Bikes", platform_name="Xero")
    cove = make_company(name="Cove Cafe", platform_name="Xero")
    dale = make_company(name="Dale Dental", platform_name="QuickBooks Online")
    elm = make_company(
        name="Elm Estates",
        platform_name="Sage",
        redirect_url="https://link.codat.io/company/elm-reconnect",
    )
    for n, company in enumerate((acme, bolt, cove)):
        make_sync(
            company,
            code=5130,
            ago=timedelta(hours=2 + n),
            items=[(ItemStatus.COMPLETED, None), (FAILED, f"Period closed 2026-0{n + 1}-31")],
        )
    make_sync(
        dale,
        code=4000,
        ago=timedelta(days=2),
        items=[(FAILED, f"Tax rate TX{100000 + n} is missing") for n in range(5)],
    )
    make_sync(
        acme,
        code=5120,
        ago=timedelta(days=3),
        items=[(FAILED, "Amount 12.50 is not valid"), (FAILED, "Amount 99.10 is not valid")],
    )
    make_sync(bolt, code=5120, ago=timedelta(days=4), items=[(FAILED, "Amount 1.25 is not valid")])
    make_sync(elm, code=4220, ago=timedelta(hours=1), items=[(FAILED, "Company de-authorized")])

    def by_code(code: int) -> Problem:
        return Problem.objects.get(status_code=code)

    problems = {
        "closed": by_code(5130),
        "tax": by_code(4000),
        "amount": by_code(5120),
        "deauth": by_code(4220),
    }
    assert TransactionState.objects.filter(outstanding=True, problem=None).count() == 0
    return {
        **problems,
        "companies": {"acme": acme, "bolt": bolt, "cove": cove, "dale": dale, "elm": elm},
    }
