"""/metrics as a whole: every metric served and documented, the gauges read at scrape
time, a source that fails, and how each process's counts reach the shared store."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from dashboard import metrics
from dashboard.metrics.catalogue import CATALOGUE
from dashboard.metrics.series import Counter, Gauge, Histogram, Recorder, encode_labels
from dashboard.metrics.stores import get_store
from dashboard.models import RefreshState, RetryRequest
from dashboard.ratelimit import get_limiter
from dashboard.tasks import refresh_rollup_task
from dashboard.vocabulary import RetryState
from synchealth.settings import filesystem_broker_options
from tests.support.factories import make_company, make_sync
from tests.support.metrics import scrape
from tests.support.users import make_user
from tests.workers import wait_for

ROOT = Path(__file__).resolve().parents[2]
CLOSED = "127.0.0.1:1"


def _family(metric: Counter | Histogram | Gauge) -> str:
    """The family's name as the parser gives it (a counter's without `_total`)."""
    return metric.name.removesuffix("_total") if isinstance(metric, Counter) else metric.name


# --- what is served, and documented ---


def test_every_metric_is_served_with_its_type_and_help(db, store):
    seen = scrape()
    for metric in CATALOGUE:
        assert seen.types.get(_family(metric)) == metric.kind, metric.name
        assert seen.helps[_family(metric)] == metric.documentation
    assert set(seen.types) == {_family(m) for m in CATALOGUE}
    for source in ("store", "database", "broker", "budget"):
        assert seen.value("synchealth_metrics_source_up", source=source) == 1


def test_every_metric_is_in_the_readme_with_an_alert_or_a_use():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Health and metrics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(synchealth_[a-z_]+)", section, re.MULTILINE))
    assert documented == {m.name for m in CATALOGUE}


# --- gauges read at scrape time ---


def test_the_mirror_s_lag_and_what_is_outstanding_are_read_at_scrape_time(db, store):
    now = timezone.now()
    oldest, newest, paused = make_company(), make_company(), make_company()
    RefreshState.objects.create(company=oldest, last_success=now - timedelta(hours=2))
    RefreshState.objects.create(company=newest, last_success=now - timedelta(minutes=5))
    RefreshState.objects.create(company=paused, paused_until=now + timedelta(minutes=30))
    make_company()  # never refreshed either
    make_company(items_outstanding=7, syncs_outstanding=2)
    make_company(items_outstanding=3, syncs_outstanding=1)
    runner = make_user("runner", "Support runner")
    sync = make_sync(make_company())
    for state in (RetryState.QUEUED, RetryState.SUBMITTED, RetryState.COMPLETED):
        RetryRequest.objects.create(
            key=uuid.uuid4(), user=runner, sync=make_sync(sync.company), company=sync.company,
            state=state,
        )  # fmt: skip

    seen = scrape()
    assert 7200 <= seen.value("synchealth_mirror_oldest_refresh_age_seconds") < 7260
    assert 300 <= seen.value("synchealth_mirror_newest_refresh_age_seconds") < 360
    assert seen.value("synchealth_mirror_companies_never_refreshed") == 5
    assert seen.value("synchealth_mirror_companies_paused") == 1
    assert seen.value("synchealth_outstanding_items") == 10
    assert seen.value("synchealth_outstanding_syncs") == 3
    assert seen.value("synchealth_outstanding_companies") == 2
    active = "synchealth_retry_requests_active"
    assert seen.value(active, state="queued") == 1
    assert seen.value(active, state="running") == 0
    assert seen.value(active, state="submitted") == 1


def test_before_any_refresh_the_mirror_s_ages_are_absent_not_zero(db, store):
    make_company()
    seen = scrape()
    assert seen.series("synchealth_mirror_oldest_refresh_age_seconds") == {}
    assert seen.value("synchealth_mirror_companies_never_refreshed") == 1


@contextmanager
def _broker(url: str, options: dict[str, object] | None = None) -> Iterator[None]:
    """The Celery app's broker, for this block (as `tests.workers.tasks_sent_to` does)."""
    from synchealth.celery import app

    conf = app.conf
    names = ("broker_url", "broker_read_url", "broker_write_url", "broker_transport_options")
    saved = [getattr(conf, name) for name in names]
    conf.broker_url = conf.broker_read_url = conf.broker_write_url = url
    conf.broker_transport_options = options or {}
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        for name, value in zip(names, saved, strict=True):
            setattr(conf, name, value)
        app._pool = None
        app.amqp._producer_pool = None


def test_the_queue_depth_counts_the_tasks_waiting_in_the_file_broker(db, store, tmp_path):
    options = filesystem_broker_options(tmp_path / "broker")
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        Path(str(options[key])).mkdir(parents=True, exist_ok=True)
    with _broker("filesystem://", options):
        assert scrape().value("synchealth_queue_depth", queue="celery") == 0
        for _ in range(3):
            refresh_rollup_task.delay()
        assert scrape().value("synchealth_queue_depth", queue="celery") == 3


def test_a_broker_that_does_not_answer_leaves_out_only_its_metrics(db, store):
    with _broker(f"redis://{CLOSED}/0"):
        seen = scrape()
    assert seen.value("synchealth_metrics_source_up", source="broker") == 0
    assert seen.value("synchealth_metrics_source_up", source="database") == 1
    assert "synchealth_queue_depth" not in seen.types
    assert seen.value("synchealth_outstanding_items") == 0


def test_a_store_that_does_not_answer_leaves_out_the_counts_and_keeps_them(db, settings):
    settings.REDIS_URL = f"redis://{CLOSED}/0"
    metrics.UPSTREAM_REQUESTS.inc(operation="list_syncs", status="200")
    seen = scrape()
    assert seen.value("synchealth_metrics_source_up", source="store") == 0
    assert "synchealth_upstream_requests" not in seen.types
    assert seen.value("synchealth_outstanding_items") == 0
    # Kept in this process, for the next write that succeeds.
    assert list(metrics.recorder.pending().values()) == [1]
    settings.REDIS_URL = ""
    get_limiter.cache_clear()
    seen = scrape()
    assert seen.value("synchealth_upstream_requests_total", operation="list_syncs", status="200")
    assert metrics.recorder.pending() == {}


# --- each process's counts, added up ---


def test_what_several_processes_add_is_added_up(db, store):
    key = ("synchealth_upstream_requests_total", encode_labels({"operation": "x", "status": "200"}))
    for amount in (2, 3, 0.5):
        get_store().add({key: amount})
    assert get_store().totals([key[0]]) == {key[0]: {key[1]: 5.5}}


def test_a_forked_process_does_not_write_its_parent_s_counts():
    recorder = Recorder()
    recorder.add("synchealth_upstream_requests_total", "{}", 1)
    child = os.fork()
    if child == 0:  # the child: a Celery or gunicorn worker just forked
        os._exit(0 if recorder.pending() == {} else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert recorder.pending() == {("synchealth_upstream_requests_total", "{}"): 1}


def test_a_process_writes_its_counts_every_few_seconds_by_itself(transactional_db, store, settings):
    settings.METRICS_FLUSH_SECONDS = 0.05
    recorder = Recorder()
    name, labels = "synchealth_upstream_requests_total", encode_labels({"operation": "x"})
    try:
        recorder.add(name, labels, 4)
        wait_for(lambda: get_store().totals([name]) == {name: {labels: 4}}, 10, "a write")
        assert recorder.pending() == {}
    finally:
        recorder.stop()


def test_metrics_are_written_when_a_task_ends(db, store, celery_eager):
    metrics.UPSTREAM_REQUESTS.inc(operation="list_syncs", status="200")
    refresh_rollup_task.delay()
    assert metrics.recorder.pending() == {}
    totals = get_store().totals(["synchealth_upstream_requests_total"])
    assert list(totals["synchealth_upstream_requests_total"].values()) == [1]


def test_a_metric_refuses_labels_it_does_not_have():
    with pytest.raises(ValueError, match="expected"):
        metrics.UPSTREAM_REQUESTS.inc(operation="list_syncs")
    with pytest.raises(ValueError, match="only goes up"):
        metrics.UPSTREAM_REQUESTS.inc(-1, operation="list_syncs", status="200")
