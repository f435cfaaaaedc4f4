"""Script the outcomes of a company's next retry, so a scenario ends one exact way."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox import services
from sandbox.models import Company, RetryScript


class Command(BaseCommand):
    help = (
        "Script the next retry (re-push) of a company: how many of its items complete "
        "(--complete N, in push order; the rest fail again) or which fail again "
        "(--fail-id TID ...; the rest complete). Each script is used by one retry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("company_id", help="The sandbox company's ID (a UUID).")
        form = parser.add_mutually_exclusive_group(required=True)
        form.add_argument(
            "--complete",
            type=int,
            metavar="N",
            help="The first N re-pushed items complete; the rest fail again.",
        )
        form.add_argument(
            "--fail-id",
            dest="fail_ids",
            action="extend",
            nargs="+",
            metavar="TID",
            help="A transaction that fails again (repeatable); every other item completes.",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        company = self._company(str(opts["company_id"]))
        try:
            script = services.script_next_retry(
                company, complete=opts["complete"], fail_transaction_ids=opts["fail_ids"]
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"Scripted the next retry of {company.name} ({company.company_id}): "
            f"{script.describe()}."
        )
        ahead = RetryScript.objects.filter(
            company=company, used_at__isnull=True, pk__lt=script.pk
        ).count()
        if ahead:
            self.stdout.write(
                f"{ahead} earlier script(s) of this company wait ahead of it; "
                f"it applies to retry number {ahead + 1} from now."
            )

    def _company(self, raw: str) -> Company:
        try:
            company_id = uuid.UUID(raw.strip())
        except ValueError:
            raise CommandError(f"{raw[:60]!r} is not a company ID (a UUID).") from None
        company = Company.objects.filter(company_id=company_id).first()
        if company is None:
            raise CommandError(f"No sandbox company {company_id}.")
        return company
