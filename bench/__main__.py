"""`make bench`: run the benchmarks (or the ones named: python -m bench estate)."""

from __future__ import annotations

import subprocess
import sys

PARTS = {"estate": "bench.estate"}


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
