"""Counting in each process, adding up in the shared store.

A counter or histogram adds to this process's `Recorder`, in memory (a lock
and a dict: nothing on the request path waits for I/O). The recorder writes
what it gathered to the shared store (`stores`):

- at the end of every Celery task, so a task's counts are in the store once
  it has finished;
- every `METRICS_FLUSH_SECONDS` from a thread of its own (web processes and
  long tasks), and once more as the process exits;
- before `/metrics` reads the store, for the process that answers it.

A write that fails (Redis or the database away) keeps the counts for the
next one: metrics never make the work they count fail.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (series name, its labels as sorted JSON)


def encode_labels(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def decode_labels(text: str) -> dict[str, str] | None:
    """The labels of a stored series; None if they are not ours (garbled, or from elsewhere)."""
    try:
        labels = json.loads(text)
    except ValueError:
        return None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    return labels


class Recorder:
    """This process's counts since its last write to the store."""

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._deltas: dict[Key, float] = {}
        self._flusher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._exit_hook = False
        self._last_warning = 0.0
        # This process's readings of gauges only it can see (a local request
        # budget), written beside its counts; set by whoever owns them.
        self.reporter: Callable[[], dict[str, float]] | None = None

    def _own(self) -> None:
        """In a forked child, forget the parent's counts (the parent writes them) and thread."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._deltas = {}
            self._flusher = None
            self._stopping = threading.Event()

    def add(self, name: str, labels: str, amount: float) -> None:
        self.add_all([((name, labels), amount)])

    def add_all(self, amounts: list[tuple[Key, float]]) -> None:
        """Several series at once: a write never carries half of them (a histogram's)."""
        self._own()
        with self._lock:
            for key, amount in amounts:
                self._deltas[key] = self._deltas.get(key, 0.0) + amount
        if self._flusher is None:
            self._start_flusher()

    def pending(self) -> dict[Key, float]:
        """What this process has counted and not yet written (for tests and the scrape)."""
        self._own()
        with self._lock:
            return dict(self._deltas)

    def discard(self) -> None:
        """Forget what was counted and not yet written (tests start from nothing)."""
        self._own()
        with self._lock:
            self._deltas = {}

    def flush(self) -> bool:
        """Write this process's counts to the store; False (counts kept) if it failed."""
        from .stores import get_store

        self._own()
        with self._lock:
            deltas, self._deltas = self._deltas, {}
        if not deltas:
            return True
        try:
            store = get_store()
            store.add(deltas)
        except Exception:
            with self._lock:
                for key, amount in deltas.items():
                    self._deltas[key] = self._deltas.get(key, 0.0) + amount
            self._warn("refused the counts; they are kept for the next write")
            return False
        if self.reporter is not None:
            try:
                store.report(process_name(), self.reporter())
            except Exception:
                # A reading is replaced by the next one: nothing to keep.
                self._warn("refused this process's readings")
        return True

    def _warn(self, what: str) -> None:
        # Once a minute at most: the store being away is one problem, not one per task.
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("metrics: the shared store %s", what, exc_info=True)

    def _start_flusher(self) -> None:
        interval = float(settings.METRICS_FLUSH_SECONDS)
        if interval <= 0:
            return
        with self._lock:
            if self._flusher is not None:
                return
            self._stopping.clear()
            self._flusher = threading.Thread(
                target=self._flush_every, args=(interval,), name="metrics", daemon=True
            )
            self._flusher.start()
            if not self._exit_hook:
                self._exit_hook = True
                atexit.register(self.flush)

    def _flush_every(self, interval: float) -> None:
        from django.db import connections

        while not self._stopping.wait(interval):
            self.flush()
            # This thread's own database connection: not kept open between writes.
            connections.close_all()

    def stop(self) -> None:
        """End the flushing thread, after one last write (a recorder that is done with)."""
        flusher = self._flusher
        if flusher is not None:
            self._stopping.set()
            flusher.join()
            self._flusher = None
        self.flush()


recorder = Recorder()


def flush_on_signal(**kwargs: object) -> None:
    """Celery's `task_postrun` and `worker_process_shutdown`: a task's counts, stored."""
    recorder.flush()


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _check(labelnames: Sequence[str], labels: dict[str, str]) -> dict[str, str]:
    if set(labels) != set(labelnames):
        raise ValueError(f"labels {sorted(labels)} given, {sorted(labelnames)} expected")
    return {name: str(value) for name, value in labels.items()}


class Counter:
    """A count that only goes up; `inc(amount, **labels)` adds to this process's recorder.

    `initial` label sets are shown as 0 before anything was counted, so that
    a rate or an alert has a series to work on from the start.
    """

    kind = "counter"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        initial: Sequence[dict[str, str]] = (),
    ) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name}")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.initial = [encode_labels(_check(self.labelnames, labels)) for labels in initial]

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        if amount:
            recorder.add(self.name, encode_labels(_check(self.labelnames, labels)), amount)

    @property
    def stored_names(self) -> list[str]:
        return [self.name]


def bucket_label(bound: float) -> str:
    """A bucket's `le`, as Prometheus writes it: 0.5, 1.0, +Inf."""
    return str(floatToGoString(bound))


class Histogram:
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.buckets = (*sorted(buckets), math.inf)

    def observe(self, value: float, **labels: str) -> None:
        checked = _check(self.labelnames, labels)
        plain = encode_labels(checked)
        amounts: list[tuple[Key, float]] = [
            ((f"{self.name}_bucket", encode_labels({**checked, "le": bucket_label(bound)})), 1)
            for bound in self.buckets
            if value <= bound
        ]
        amounts += [((f"{self.name}_sum", plain), value), ((f"{self.name}_count", plain), 1)]
        recorder.add_all(amounts)

    @property
    def stored_names(self) -> list[str]:
        return [f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"]


class Gauge:
    """A value read when `/metrics` is asked (`exposition`): nothing is counted for it."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
