"""Keep creating expense transactions for random companies over the sandbox API,
so that a running demo shows new syncs arriving (and, through webhooks and
polling, the dashboard picking them up)."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone


class Command(BaseCommand):
    help = "Generate expense-transaction traffic against the sandbox API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default=settings.CODAT_BASE_URL)
        parser.add_argument("--api-key", default=settings.SANDBOX_API_KEY)
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between posts.")
        parser.add_argument("--count", type=int, default=0, help="Stop after N posts (0: never).")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: object, **opts: Any) -> None:
        rng = random.Random(opts["seed"])
        base = str(opts["base_url"]).rstrip("/")
        client = httpx.Client(
            base_url=base, auth=(str(opts["api_key"]), ""), timeout=httpx.Timeout(10.0)
        )
        companies: list[str] = []
        posted = 0
        count = int(opts["count"])
        interval = float(opts["interval"])
        while not count or posted < count:
            try:
                if not companies:
                    page = client.get("/companies", params={"pageSize": 5000}).raise_for_status()
                    companies = [c["id"] for c in page.json()["results"]]
                company = rng.choice(companies)
                body = [self._expense(rng) for _ in range(rng.randint(1, 8))]
                response = client.post(
                    f"/companies/{company}/sync/expenses/expense-transactions",
                    json=body,
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                response.raise_for_status()
                posted += 1
                self.stdout.write(
                    f"posted {len(body)} expense(s) for {company}: sync {response.json()['syncId']}"
                )
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                # The server may still be starting, or be injecting faults.
                self.stderr.write(f"traffic: {type(exc).__name__}: {exc}")
            time.sleep(interval)

    @staticmethod
    def _expense(rng: random.Random) -> dict:
        net = round(rng.uniform(3, 900), 2)
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": rng.choice(["Payment", "Payment", "Payment", "Refund"]),
            "issueDate": timezone.now().date().isoformat(),
            "currency": rng.choice(["GBP", "USD", "EUR"]),
            "merchantName": rng.choice(["Pret", "Uber", "AWS", "Staples", "Delta", "Hilton"]),
            "lines": [
                {
                    "netAmount": net,
                    "taxAmount": round(net * 0.2, 2),
                    "accountRef": {"id": str(rng.randint(400, 499))},
                    "taxRateRef": {"id": "INPUT2"},
                }
            ],
        }
