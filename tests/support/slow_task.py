"""A task that runs until the test lets it end, for tests that stop a worker while it runs.

A worker loads it with `--include tests.support.slow_task`. It notes in a file
when it starts and when it ends, so a test sees every run, and has the
project's task settings (acknowledged late, and so on) like any other task.
"""

from __future__ import annotations

import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.slow")
def slow(marks: str, release: str, limit: float = 60.0) -> None:
    """Note the start in `marks`, wait for the file `release` (at most `limit` s), note the end."""
    with Path(marks).open("a") as out:
        out.write("started\n")
    deadline = time.monotonic() + limit
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with Path(marks).open("a") as out:
        out.write("finished\n")
