"""`make bench`: run the benchmarks (or the ones named: python -m bench ingest ui).

Parts: estate (the sandbox's large estate), ingest (part 1), ui (part 2),
bulk_retry (part 3), migrations (part 6: an upgrade's locks), retention
(part 7: pruning while the pages are read), alerts (part 10: evaluating
every rule at scale, and a failure's alert through a running worker), polling
(part 12: adaptive polling's ticks at 10,000 companies over a simulated day),
webhooks (part 13: signed deliveries in bursts to gunicorn on PostgreSQL),
freshness (part 14: the whole system in real time at 10,000 companies, the
mirror's lag behind the upstream with webhooks lost). Each
prints its figures, and as its last line a JSON object; docs/benchmarks.md
records them with the command that made them.
"""

from __future__ import annotations

import subprocess
import sys

PARTS = {
    "ingest": "bench.ingest",
    "ui": "bench.ui",
    "bulk_retry": "bench.bulk_retry",
    "estate": "bench.estate",
    "migrations": "bench.migrations",
    "retention": "bench.retention",
    "alerts": "bench.alerts",
    "polling": "bench.polling",
    "webhooks": "bench.webhooks",
    "freshness": "bench.freshness",
}


def main() -> int:
    names = sys.argv[1:] or list(PARTS)
    failed = 0
    for name in names:
        if name not in PARTS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(PARTS)}")
            return 2
        print(f"== bench {name}", flush=True)
        failed |= subprocess.call([sys.executable, "-m", PARTS[name]])
    return failed


if __name__ == "__main__":
    sys.exit(main())
