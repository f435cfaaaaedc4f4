"""The Celery application shared by the web process, the workers and beat."""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from synchealth.checks import log_broker_problem
from synchealth.logs import HANDED_BACK

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")

app = Celery("synchealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
worker_ready.connect(log_broker_problem, dispatch_uid="synchealth.log_broker_problem")

logger = logging.getLogger(__name__)


class HandBackOnQuit:
    """On SIGQUIT a worker first puts its unfinished tasks back on the broker.

    SIGQUIT is Celery's cold shutdown: it stops the running tasks. As tasks
    are acknowledged only once finished (CELERY_TASK_ACKS_LATE), their
    messages, and those the worker prefetched or holds for a countdown, are
    still its own; Celery hands them back only as it closes its connection,
    seconds later (or never, if it waits for a task it failed to stop), and
    the file broker has already taken them out of its folder: a worker killed
    before then loses them. Handed back first, they run again at the next
    start, and the rest of the shutdown may be cut short (`make run` does).
    A task that still finishes in that moment runs twice, which every task
    allows (they claim their work with a conditional update).
    """

    def __init__(self) -> None:
        self.consumer: Any = None

    def install(self, sender: Any = None, **_: object) -> None:
        """`worker_ready`, in the worker's main process: wrap Celery's SIGQUIT handler."""
        self.consumer = sender
        cold_shutdown = signal.getsignal(signal.SIGQUIT)

        def hand_back_then_shut_down(signum: int, frame: FrameType | None) -> None:
            self.hand_back()
            if callable(cold_shutdown):
                cold_shutdown(signum, frame)

        signal.signal(signal.SIGQUIT, hand_back_then_shut_down)

    def hand_back(self) -> None:
        task_consumer = getattr(self.consumer, "task_consumer", None)
        qos = getattr(getattr(task_consumer, "channel", None), "qos", None)
        restore_unacked = getattr(qos, "restore_unacked", None)
        if restore_unacked is not None:
            restore_unacked()
            logger.info(HANDED_BACK)


worker_ready.connect(HandBackOnQuit().install, dispatch_uid="synchealth.hand_back", weak=False)


def countdown_ceiling() -> float:
    """The longest countdown a task may be given.

    Tasks are acknowledged late, and a task waiting for its countdown is not
    acknowledged either: once the broker's visibility timeout has passed,
    Redis hands it to a second worker, and then again and again. So the wait
    plus the task's longest run (its hard time limit) must fit inside the
    timeout; a task that wakes early finds its work not yet due and waits again.
    """
    from django.conf import settings

    return float(max(1, settings.CELERY_VISIBILITY_TIMEOUT - settings.CELERY_TASK_TIME_LIMIT))


def capped_countdown(seconds: float) -> float:
    """`seconds`, at most `countdown_ceiling()` (and never negative)."""
    return max(0.0, min(float(seconds), countdown_ceiling()))
