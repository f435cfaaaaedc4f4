"""`make run` (`python -m synchealth.run`): a console that stays quiet once
everything is up, a verbose flag that brings every request and task back, and
a Ctrl-C that stops every process within seconds without losing a task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from synchealth import run
from synchealth.logs import HANDED_BACK
from tests.support.deploy import ROOT
from tests.workers import database_url, tasks_sent_to, wait_for

# "A few dozen lines a minute when idle": at most 30 a minute, over half a minute.
IDLE_SECONDS = 30
IDLE_LINES = 15
# Ctrl-C to the last process gone.
STOP_SECONDS = 3.0
# Migrating, seeding the demo estate and starting four processes (a busy CI
# machine may need a minute).
START_SECONDS = 150

# What the test run sets for itself and a developer's shell does not.
_TEST_ONLY = {
    "SYNCHEALTH_ALLOW_INSECURE_SECRET",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "SANDBOX_API_KEY",
    "SANDBOX_ENABLED",
    "METRICS_FLUSH_SECONDS",
    run.VERBOSE_VARIABLE,
}

SANDBOX_REQUEST = (
    '[28/Nov/2026 12:08:29] "GET /sandbox/companies/b925d700-ac05-4fc4-8064-84de00335dbf'
    '/sync/expenses/syncs/list/status HTTP/1.1" 200 13378'
)


class Output:
    """A process's lines, each with the moment it arrived."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        assert process.stdout is not None
        stream = process.stdout
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def since(self, moment: float) -> list[str]:
        return [line for at, line in self.lines if at > moment]

    def join(self) -> None:
        self._thread.join(timeout=5)


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`: children, grandchildren… (Linux)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.system
@pytest.mark.timeout(START_SECONDS + IDLE_SECONDS + 60)
def test_make_run_is_quiet_once_up_and_one_ctrl_c_stops_every_process_within_seconds(
    tmp_path, free_tcp_port_factory
):
    var = tmp_path / "var"
    env = {name: value for name, value in os.environ.items() if name not in _TEST_ONLY}
    env.update(SYNCHEALTH_VAR_DIR=str(var), HOST="127.0.0.1", PORT=str(free_tcp_port_factory()))
    processes: set[int] = set()
    make_run = subprocess.Popen(
        [sys.executable, "-m", "synchealth.run"], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    output = Output(make_run)
    try:
        wait_for(
            lambda: "Sync Health is ready on" in output.text() or make_run.poll() is not None,
            START_SECONDS,
            "the banner",
        )
        assert make_run.poll() is None, output.text()
        up = time.monotonic()
        banner = output.text().split("Sync Health is ready on", 1)[1]
        assert f"http://127.0.0.1:{env['PORT']}/" in banner
        assert "Demo login: demo / " in banner
        assert str(var / "log" / "run.log") in banner
        # Never a secret: the terminal is scrolled back, shared and pasted.
        secret = (var / "webhook-secret.txt").read_text().strip()
        assert secret not in output.text()
        assert "sandbox-demo-key" not in output.text()

        time.sleep(IDLE_SECONDS)
        idle = output.since(up)
        assert len(idle) <= IDLE_LINES, "\n".join(idle)
        # Meanwhile the worker pulled the demo estate and the traffic generator
        # posted: the log file has every request and task that the console left out.
        log = (var / "log" / "run.log").read_text()
        assert '"GET /sandbox/companies' in log
        assert "] received" in log and "posted " in log

        processes = {make_run.pid} | _descendants(make_run.pid)
        assert len(processes) >= 6  # run, web, worker (and its pool), beat, traffic
        ctrl_c = time.monotonic()
        # What a terminal does: SIGINT to its foreground process group.
        os.killpg(make_run.pid, signal.SIGINT)
        while any(_running(pid) for pid in processes):
            assert time.monotonic() - ctrl_c < STOP_SECONDS, (
                f"still running {STOP_SECONDS} s after Ctrl-C: "
                f"{[pid for pid in processes if _running(pid)]}\n{output.text()}"
            )
            time.sleep(0.05)
        assert make_run.wait(timeout=1) == 0
    finally:
        for pid in processes | {make_run.pid} | _descendants(make_run.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        make_run.wait()
    output.join()
    text = output.text()
    assert "ERROR" not in text and "Traceback" not in text, text
    assert HANDED_BACK in text
    assert text.rstrip().endswith("Stopped.")


@pytest.mark.system
@pytest.mark.timeout(120)
def test_a_task_cut_short_by_ctrl_c_is_put_back_and_runs_at_the_next_start(
    transactional_db, tmp_path, monkeypatch, capsys
):
    """The worker `make run` starts, stopped as `make run` stops it, on the file broker."""
    var = tmp_path / "var"
    marks = tmp_path / "marks.txt"
    release = tmp_path / "release"
    monkeypatch.setenv("SYNCHEALTH_VAR_DIR", str(var))
    monkeypatch.setenv("DATABASE_URL", database_url())
    monkeypatch.setenv("DATABASE_CONN_MAX_AGE", "0")
    monkeypatch.setenv("CELERY_BROKER_URL", "filesystem://")
    monkeypatch.setenv("CACHE_KEY_PREFIX", f"make-run-{uuid.uuid4().hex[:8]}")
    monkeypatch.chdir(ROOT)
    worker = [*run.worker_command(verbose=False), "--include", "tests.support.slow_task"]
    queue = var / "broker" / "out"

    with tasks_sent_to("filesystem://", var_dir=var):
        from tests.support.slow_task import slow

        running = slow.delay(str(marks), str(release))
        # One held for a countdown: the worker keeps it, unacknowledged, until it is due.
        later = slow.apply_async((str(tmp_path / "later.txt"), str(release)), countdown=3600)

    console = run.Console(tmp_path / "run.log", verbose=False)
    first = run.Supervisor(console)
    first.start("worker", worker)
    try:
        wait_for(lambda: marks.exists() and "started" in marks.read_text(), 60, "the task")
        wait_for(lambda: f"[{later.id}] received" in console.log_path.read_text(), 10, "later")
        assert not list(queue.iterdir())
    finally:
        stopping = time.monotonic()
        first.stop()
    assert time.monotonic() - stopping < STOP_SECONDS
    # Both messages are back in the broker's folder; the task did not finish.
    assert len(list(queue.iterdir())) == 2
    assert marks.read_text() == "started\n"
    console.close("")
    quiet = capsys.readouterr().out
    assert HANDED_BACK in quiet
    assert "ERROR" not in quiet and "Traceback" not in quiet, quiet

    release.touch()
    console = run.Console(tmp_path / "run.log", verbose=False)
    second = run.Supervisor(console)
    second.start("worker", worker)
    try:
        wait_for(
            lambda: f"[{running.id}] succeeded" in console.log_path.read_text(),
            60,
            "the task to run again, to its end",
        )
        wait_for(lambda: f"[{later.id}] received" in console.log_path.read_text(), 10, "later")
    finally:
        second.stop()
        console.close("")
    assert marks.read_text() == "started\nstarted\nfinished\n"


def test_the_quiet_console_leaves_requests_and_tasks_to_the_log_file(tmp_path, capsys):
    console = run.Console(tmp_path / "run.log", verbose=False)
    console.line(SANDBOX_REQUEST)
    console.line("2026-11-28 12:10:11 WARNING dashboard.upstream: the upstream refused")
    console.close("  Stopped.")
    shown = capsys.readouterr().out
    assert SANDBOX_REQUEST not in shown
    assert "WARNING dashboard.upstream: the upstream refused" in shown
    assert SANDBOX_REQUEST in (tmp_path / "run.log").read_text()


def test_the_verbose_console_shows_every_request_and_task(tmp_path, capsys):
    console = run.Console(tmp_path / "run.log", verbose=True)
    console.line(SANDBOX_REQUEST)
    console.close("  Stopped.")
    assert SANDBOX_REQUEST in capsys.readouterr().out
    assert SANDBOX_REQUEST in (tmp_path / "run.log").read_text()


def test_the_previous_runs_log_is_kept_beside_the_new_one(tmp_path, capsys):
    (tmp_path / "run.log").write_text("the previous run\n")
    run.Console(tmp_path / "run.log", verbose=False).close("")
    assert (tmp_path / "run.log.1").read_text() == "the previous run\n"
    assert "the previous run" not in (tmp_path / "run.log").read_text()


@pytest.mark.parametrize(
    "line",
    [
        SANDBOX_REQUEST,
        '[28/Nov/2026 12:10:12] "POST /sandbox/companies/6190/push HTTP/1.1" 500 49',
        '[28/Nov/2026 12:10:12] "POST /webhooks/codat HTTP/1.1" 200 68',
        '[28/Nov/2026 12:10:12] "GET /healthz HTTP/1.1" 200 15',
        "[2026-11-28 12:10:12,821: INFO/MainProcess] Task alerts.evaluate"
        "[1b79ed26-3b83-4729-ba94-bce97581ff64] received",
        "[2026-11-28 12:10:12,351: INFO/ForkPoolWorker-1] Task alerts.evaluate"
        "[f76c6d65-0414-4468-8ab7-67d5f954ad68] succeeded in 0.0030142269999942073s: 0",
        "[2026-11-28 12:10:13,334: INFO/MainProcess] Scheduler: Sending due task "
        "sandbox-finalize-due (sandbox.finalize_due)",
        "[2026-11-28 16:12:00,150: INFO/ForkPoolWorker-1] poll: 60 companies queued "
        "(0 of 2500 requests used this window)",
        "[2026-11-28 16:11:59,765: INFO/ForkPoolWorker-2] reconcile: 60 companies queued, 0 paused",
        "posted 4 expense(s) for 6190251b-f760-4a6b-82b4-3aa65fc1e3dd: sync 032855f4",
        "worker: Hitting Ctrl+C again will terminate all running tasks!",
        "worker: Cold shutdown (MainProcess)",
        "",
    ],
)
def test_chatter_is_what_every_request_and_task_prints(line):
    assert run.chatter(line)


@pytest.mark.parametrize(
    "line",
    [
        '[28/Nov/2026 12:10:12] "GET /history/ HTTP/1.1" 500 145',
        '[28/Nov/2026 12:10:12] "GET /nowhere HTTP/1.1" 404 179',
        "[2026-11-28 12:10:12,351: ERROR/ForkPoolWorker-1] Task dashboard.refresh_company"
        "[f76c6d65-0414-4468-8ab7-67d5f954ad68] raised unexpected: ValueError()",
        "[2026-11-28 12:10:12,351: WARNING/ForkPoolWorker-1] Task dashboard.refresh_company"
        "[f76c6d65-0414-4468-8ab7-67d5f954ad68] received",
        "2026-11-28 12:10:11 ERROR django.request: Internal Server Error: /sandbox/companies",
        "Traceback (most recent call last):",
        "traffic: ConnectError: [Errno 111] Connection refused",
        HANDED_BACK,
    ],
)
def test_failures_warnings_and_our_own_words_are_not_chatter(line):
    assert not run.chatter(line)


def test_verbose_is_asked_for_with_the_flag_or_the_environment(monkeypatch):
    monkeypatch.delenv(run.VERBOSE_VARIABLE, raising=False)
    assert not run.verbose_requested([])
    assert run.verbose_requested(["--verbose"])
    monkeypatch.setenv(run.VERBOSE_VARIABLE, "1")
    assert run.verbose_requested([])
    monkeypatch.setenv(run.VERBOSE_VARIABLE, "0")
    assert not run.verbose_requested([])
    monkeypatch.setenv(run.VERBOSE_VARIABLE, "loud")
    with pytest.raises(SystemExit):
        run.verbose_requested([])
    # Celery's banners (its settings, queues and every task's name) only when verbose.
    assert "--quiet" in run.worker_command(verbose=False)
    assert "--quiet" not in run.worker_command(verbose=True)


def test_make_run_verbose_sets_the_variable():
    dry_run = subprocess.run(
        ["make", "-n", "run", "VERBOSE=1"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"{run.VERBOSE_VARIABLE}=1 " in dry_run
    quiet = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert run.VERBOSE_VARIABLE not in quiet
