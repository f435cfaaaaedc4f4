"""Build the sandbox's estate: a demo for `make run`, or a large one for benchmarks."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from sandbox import estate
from sandbox.models import Company, SandboxSettings

PRESETS: dict[str, dict[str, float]] = {
    "demo": {"companies": 60, "syncs_per_company": 40, "items_per_sync": 12, "days": 30},
    "ingest": {"companies": 1000, "syncs_per_company": 30, "items_per_sync": 20, "days": 60},
    "large": {"companies": 10_000, "syncs_per_company": 100, "items_per_sync": 21.5, "days": 90},
}


class Command(BaseCommand):
    help = "Build a deterministic sandbox estate (companies, syncs, transaction statuses)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
        parser.add_argument("--companies", type=int)
        parser.add_argument("--syncs-per-company", type=int)
        parser.add_argument("--items-per-sync", type=float)
        parser.add_argument("--days", type=int)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--big-sync-items",
            type=int,
            default=0,
            help="Give the first company one sync of this many items (paging benchmarks).",
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete the existing estate first."
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the sandbox already has companies (for `make run`).",
        )

    def handle(self, *args: object, **opts: Any) -> None:
        SandboxSettings.load()
        if opts["if_empty"] and Company.objects.exists():
            self.stdout.write("Sandbox estate already present; leaving it as it is.")
            return
        if opts["reset"]:
            estate.reset()
        preset = dict(PRESETS[str(opts["preset"])])
        for key in ("companies", "syncs_per_company", "items_per_sync", "days"):
            if opts.get(key) is not None:
                preset[key] = opts[key]

        def progress(stats: estate.EstateStats) -> None:
            rate = stats.items / stats.seconds if stats.seconds else 0
            self.stdout.write(
                f"\r  {stats.companies:>7,} companies {stats.syncs:>10,} syncs "
                f"{stats.items:>12,} items  {stats.seconds:7.1f}s  {rate:>10,.0f} items/s",
                ending="",
            )
            self.stdout.flush()

        stats = estate.build_estate(
            companies=int(preset["companies"]),
            syncs_per_company=int(preset["syncs_per_company"]),
            items_per_sync=float(preset["items_per_sync"]),
            days=int(preset["days"]),
            seed=int(opts["seed"]),
            progress=progress,
            big_sync_items=int(opts["big_sync_items"]),
        )
        self.stdout.write("")
        codes = ", ".join(f"{code}: {n:,}" for code, n in sorted(stats.codes.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Built {stats.companies:,} companies, {stats.syncs:,} syncs and "
                f"{stats.items:,} items in {stats.seconds:.1f}s on {connection.vendor}."
            )
        )
        self.stdout.write(f"Status codes: {codes}")
