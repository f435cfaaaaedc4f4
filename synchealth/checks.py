"""Settings that let a deployment start but quietly serve it badly.

A setting that cannot work stops the start (synchealth/settings.py); one that
works but wears down what production relies on is a warning here, shown by
`manage.py check` (which the production start runs with `--deploy`), by
`migrate` and `runserver`, and logged by each worker as it starts.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)

# What each development broker gives up, in a sentence.
_DEVELOPMENT_BROKERS = {
    "filesystem": (
        "keeps its queue in files on one machine: a task whose worker dies is never delivered again"
    ),
    "memory": "keeps each process's tasks to itself: no worker ever receives them",
}


def development_broker_problem() -> str | None:
    """What is wrong with a development broker outside development, or None.

    Local development and the tools and tests (DEBUG=1 or
    SYNCHEALTH_ALLOW_INSECURE_SECRET=1) use these brokers on purpose.
    """
    if not settings.DEPLOYMENT:
        return None
    scheme = str(settings.CELERY_BROKER_URL).split(":", 1)[0]
    if scheme not in _DEVELOPMENT_BROKERS:
        return None
    budget = (
        ""
        if settings.REDIS_URL
        else " Without Redis each process also keeps its own request budget, so the "
        "workers together can exceed Codat's rate limits."
    )
    return (
        f"CELERY_BROKER_URL is {scheme}://, a development broker that "
        f"{_DEVELOPMENT_BROKERS[scheme]}.{budget} Set CELERY_BROKER_URL=redis://HOST:6379/0."
    )


@checks.register()
def check_broker(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problem = development_broker_problem()
    if problem is None:
        return []
    return [checks.Warning(problem, id="synchealth.W001")]


def log_broker_problem(**kwargs: Any) -> None:
    """Celery's `worker_ready`: say it in the worker's log too, where operators look."""
    problem = development_broker_problem()
    if problem is not None:
        logger.warning(problem)
