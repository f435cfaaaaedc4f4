"""The Celery application shared by the web process, the workers and beat."""

import os

from celery import Celery
from celery.signals import worker_ready

from synchealth.checks import log_broker_problem

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")

app = Celery("synchealth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
worker_ready.connect(log_broker_problem, dispatch_uid="synchealth.log_broker_problem")


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
