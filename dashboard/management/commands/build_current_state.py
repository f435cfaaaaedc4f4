"""Build the current state (outstanding items, resolved syncs) from the mirrored history.

Run once after upgrading to the release that added it; ingest keeps it up to
date from then on. It works one company per transaction, so no transaction
spans the whole table, and it is resumable: a company is marked when built,
and a second run (after a crash, or Ctrl-C) starts with the companies not yet
built. `--rebuild` builds every company again (the result is the same).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard import ingest
from dashboard.db.maintenance import analyze
from dashboard.ingest import state
from dashboard.models import Company, Sync, TransactionState

# The statistics of the tables a build grows or rewrites are refreshed this often.
ANALYZE_EVERY = 500


class Command(BaseCommand):
    help = "Build each company's current state (outstanding items, resolved syncs) from history."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rebuild", action="store_true", help="Build every company again, not only new ones."
        )
        parser.add_argument(
            "--limit", type=int, default=0, help="Stop after this many companies (0: all)."
        )

    def handle(self, *args: object, **options: Any) -> None:
        todo = state.companies_to_build(rebuild=options["rebuild"])
        if options["limit"] > 0:
            todo = todo[: options["limit"]]
        started = time.monotonic()
        transactions = syncs = 0
        for done, company_pk in enumerate(todo, start=1):
            found, changed = state.build_company(company_pk)
            # The streak counts retry chains once, as the chain categories now say.
            ingest.update_streak(Company.objects.get(pk=company_pk))
            transactions += found
            syncs += changed
            if done % ANALYZE_EVERY == 0:
                analyze(TransactionState)
                analyze(Sync)
            if done % 100 == 0 or done == len(todo):
                elapsed = time.monotonic() - started
                self.stdout.write(
                    f"  {done}/{len(todo)} companies, {transactions} transactions, "
                    f"{syncs} syncs updated, {elapsed:.1f} s"
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"Current state built for {len(todo)} companies in "
                f"{time.monotonic() - started:.1f} s."
            )
        )
