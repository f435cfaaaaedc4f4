"""A few problems built through the mirror's own upkeep (factories → current state → problems).

`problem_estate()` makes four causes across five companies:

- `closed`: 5130 "period closed", on Xero, at three companies (one item each);
- `tax`: 4000 "tax rate missing", on QuickBooks Online, one company, five items;
- `amount`: 5120 "amount invalid", on Xero, two companies (two items at one);
- `deauth`: 4220 "de-authorized", on Sage, one company with a reconnect link;

each keyed by name to its `Problem`, with the companies under `companies`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dashboard.models import Problem, TransactionState
from dashboard.vocabulary import ItemStatus
from tests.support.factories import make_company, make_sync

FAILED = ItemStatus.PUSH_ERROR


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
