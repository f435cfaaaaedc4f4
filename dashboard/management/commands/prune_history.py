"""Apply the retention policy now: what beat's hourly *dashboard-retention* does, to the end.

Removes the history (syncs and their items), webhook events and the other
kinds of row past their RETENTION_*_DAYS, in batches of RETENTION_BATCH_SYNCS
syncs / RETENTION_BATCH_ITEMS items, each its own transaction; it can be
stopped at any moment and run again. `--dry-run` counts what it would remove.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from dashboard import retention


class Command(BaseCommand):
    help = "Remove the history, webhook events and logs older than the retention policy keeps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be removed; remove nothing."
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            default=None,
            help="Stop after this long (between batches); the next run carries on.",
        )

    def handle(self, *args: object, **options: Any) -> None:
        dry_run = options["dry_run"]
        started = time.monotonic()
        for outcome in retention.run(dry_run=dry_run, max_seconds=options["max_seconds"]):
            if outcome.before is None:
                self.stdout.write(f"{outcome.step}: kept for ever (its RETENTION_*_DAYS is 0)")
                continue
            removed = {k: n for k, n in outcome.counts.items() if not k.startswith("kept")}
            kept = {
                k[len("kept: ") :]: n for k, n in outcome.counts.items() if k.startswith("kept")
            }
            verb = "would remove" if dry_run else "removed"
            line = f"{outcome.step} before {outcome.before:%Y-%m-%d %H:%M} UTC: {verb} "
            line += _counts(removed) or "nothing"
            if kept:
                line += f"; older syncs kept: {_counts(kept)}"
            if not outcome.finished:
                line += " (stopped: time spent; run again to carry on)"
            self.stdout.write(line)
        self.stdout.write(f"in {time.monotonic() - started:.1f} s")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items()) if n)
