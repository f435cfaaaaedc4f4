"""Erase one company's mirrored data, for offboarding or an erasure request.

Deletes its syncs, push items, current state, retry requests, bulk retry
members, configuration snapshots, refresh state and the webhook events naming
it, then the company; keeps a purge record (its ID, the reason, who asked and
when, how many rows went; never its name), which also stops the mirror from
fetching it again. Resumable: run it again to finish a purge that was stopped.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum

from dashboard import retention
from dashboard.models import Company, Sync
from dashboard.vocabulary import PurgeReason


class Command(BaseCommand):
    help = "Erase one company's mirrored data, keeping a record that it was done."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("company_id", help="The company's ID (a UUID).")
        parser.add_argument(
            "--by", required=True, help="Username of the person who asked for the erasure."
        )
        parser.add_argument("--reason", required=True, choices=list(PurgeReason.values))
        parser.add_argument(
            "--no-input", action="store_false", dest="interactive", help="Do not ask to confirm."
        )

    def handle(self, *args: object, **options: Any) -> None:
        try:
            company_id = uuid.UUID(options["company_id"])
        except ValueError:
            raise CommandError(f"{options['company_id']!r} is not a company ID.") from None
        if not User.objects.filter(username=options["by"]).exists():
            raise CommandError(f"No user is called {options['by']!r}: --by names who asked.")
        company = Company.objects.filter(company_id=company_id).first()
        if company is None:
            self.stdout.write(f"Company {company_id} has no mirrored data.")
        else:
            syncs = Sync.objects.filter(company=company)
            items = syncs.aggregate(n=Sum("items_total"))["n"] or 0
            self.stdout.write(
                f"Company {company_id} ({company.name}): {syncs.count():,} syncs, "
                f"about {items:,} push items."
            )
        if options["interactive"]:
            answer = input("Erase it for good, and never mirror it again? Type 'yes' to continue: ")
            if answer != "yes":
                raise CommandError("Nothing erased.")
        record, _ = retention.request_purge(
            company_id=company_id, requested_by=options["by"], reason=options["reason"]
        )
        finished = retention.purge.purge(record.pk)
        if finished is None:
            record.refresh_from_db()
            if record.finished_at is None:
                raise CommandError(
                    "A worker is erasing it now; run this again later to see its record."
                )
            finished = record
        removed = ", ".join(f"{n:,} {kind}" for kind, n in sorted(finished.removed.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Purged {company_id} (record {finished.pk}, {finished.get_reason_display()}, "
                f"asked by {finished.requested_by}, finished {finished.finished_at:%Y-%m-%d %H:%M} "
                f"UTC): {removed or 'nothing was mirrored'}."
            )
        )
