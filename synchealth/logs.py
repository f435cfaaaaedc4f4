"""What the processes' logs leave out, and a line `make run` waits for."""

from __future__ import annotations

import logging

# Logged by a worker told to stop with SIGQUIT once it has put its unfinished
# tasks back on the broker (synchealth.celery); from then on it may be killed
# without loss.
HANDED_BACK = "Stopping: unfinished tasks are back on the broker for the next start."


class BrokerHostnameFilter(logging.Filter):
    """Leaves out kombu's warning that the broker URL names no host.

    The file broker (`filesystem://`, the default) has no host to name, and
    every process would say so the first time it sends or takes a task.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No hostname was supplied")
