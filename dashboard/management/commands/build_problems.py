"""Build the problems of an estate mirrored before problems existed, in batches."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from dashboard.models import Company
from dashboard.problems import backfill


class Command(BaseCommand):
    help = (
        "Group every outstanding failure into problems: fingerprint failed items and syncs "
        "again with today's normaliser, re-point problem aliases, and give each outstanding "
        "transaction and failing sync its problem. One company per transaction; safe to run "
        "again, and while workers ingest."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--company", action="append", default=[], help="Only this company ID (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        pks = None
        if options["company"]:
            pks = list(
                Company.objects.filter(company_id__in=options["company"]).values_list(
                    "pk", flat=True
                )
            )
            if len(pks) != len(set(options["company"])):
                self.stderr.write("Some of those companies are not in the mirror.")

        def progress(built: backfill.Built) -> None:
            self.stdout.write(f"  {built.companies:,} companies, {built.transactions:,} open items")

        built = backfill.build(pks, progress)
        self.stdout.write(
            f"Built the problems of {built.companies:,} companies in "
            f"{time.monotonic() - started:.1f} s: {built.transactions:,} outstanding "
            f"transactions, {built.items_fingerprinted:,} items and "
            f"{built.syncs_fingerprinted:,} syncs fingerprinted again, "
            f"{built.aliases_added:,} aliases added."
        )
