"""Refresh the mirror in the foreground: the same code the Celery tasks run.

manage.py refresh --all               every company (the list is re-read first)
manage.py refresh --company <ID> ...  just these companies
manage.py refresh --all --force       re-read every sync's items and config too
manage.py refresh --all --enqueue     hand it to the Celery workers instead
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from dashboard import ingest, rankings, rollup
from dashboard.models import Company
from dashboard.upstream import Upstream, UpstreamError


class Progress:
    def __init__(self, total: int, out: Any) -> None:
        self.total, self.done, self.out = total, 0, out
        self.started = time.monotonic()
        self.interactive = hasattr(out, "isatty") and out.isatty()
        self.last_draw = 0.0

    def step(self, label: str = "") -> None:
        self.done += 1
        now = time.monotonic()
        if not self.interactive and self.done != self.total and now - self.last_draw < 5:
            return
        self.last_draw = now
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        elapsed = now - self.started
        end = "\r" if self.interactive and self.done < self.total else "\n"
        self.out.write(
            f"[{bar}] {self.done}/{self.total} companies {elapsed:6.1f}s {label[:40]:<40}{end}"
        )
        self.out.flush()


class Command(BaseCommand):
    help = "Refresh the mirror from the upstream now, with a progress bar and a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", action="append", default=[], metavar="ID")
        parser.add_argument("--all", action="store_true", help="every company")
        parser.add_argument("--force", action="store_true", help="re-read items and config")
        parser.add_argument(
            "--enqueue", action="store_true", help="queue it for the Celery workers and return"
        )
        parser.add_argument(
            "--workers", type=int, default=4, help="companies refreshed at once (default 4)"
        )

    def handle(self, *args: object, **options: Any) -> None:
        if not options["all"] and not options["company"]:
            raise CommandError("Give --all or --company ID.")
        if options["enqueue"]:
            from dashboard.tasks import reconcile_task, refresh_company_task

            if options["all"]:
                reconcile_task.delay()
                self.stdout.write("Queued a reconciliation of every company.")
            for company_id in options["company"]:
                refresh_company_task.delay(company_id, force=options["force"])
                self.stdout.write(f"Queued a refresh of {company_id}.")
            return
        started = time.monotonic()
        total = ingest.Stats()
        failures: list[str] = []
        with Upstream() as client:
            try:
                if options["all"]:
                    companies = ingest.refresh_companies(client)
                else:
                    companies = [ingest.ensure_company(client, cid) for cid in options["company"]]
            except (UpstreamError, ingest.CompanyPurged) as exc:
                raise CommandError(f"Could not read the companies: {exc}") from exc
            progress = Progress(len(companies), sys.stderr)

            def one(company: Company) -> ingest.Stats:
                try:
                    return ingest.refresh_company(client, company, force=options["force"])
                finally:
                    connection.close()

            with ThreadPoolExecutor(max_workers=max(1, options["workers"])) as pool:
                futures = {pool.submit(one, c): c for c in companies}
                for future in as_completed(futures):
                    company = futures[future]
                    try:
                        total.add(future.result())
                    except (UpstreamError, ingest.CompanyPurged) as exc:
                        failures.append(f"{company.company_id}: {exc}")
                    progress.step(company.name)
            requests = client.requests_made
        # What beat's rollup task would do next: the dashboard is exact either
        # way, but fast only for hours already rolled up.
        hours = rollup.refresh()
        rankings.refresh()
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"companies {len(companies)}, syncs {total.syncs_seen} "
            f"({total.syncs_written} written, {total.syncs_fetched} with items read), "
            f"items {total.items_seen} ({total.items_written} written, "
            f"{total.items_deleted} removed), configs {total.configs_written}, "
            f"requests {requests}, hours rolled up {hours}, time {elapsed:.1f}s"
        )
        for failure in failures:
            self.stderr.write(f"failed: {failure}")
        if failures:
            raise CommandError(f"{len(failures)} companies could not be refreshed (see above).")
