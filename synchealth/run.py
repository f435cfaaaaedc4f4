"""`make run`: prepare the embedded defaults and run every process in one go.

Migrates, seeds the sandbox with a demo estate (once), makes sure the demo
login exists, then starts the web server, a Celery worker, Celery beat and the
sandbox's traffic generator, and says where to go once the web server answers
and the worker and beat are ready.

Everything the processes print goes to `var/log/run.log`. The console shows it
too, except the lines each request and each task make (`chatter`), unless
asked to (`--verbose`, `SYNCHEALTH_RUN_VERBOSE=1`, `make run VERBOSE=1`).

One Ctrl-C stops them all within seconds, the worker's unfinished tasks kept
for the next start (`Supervisor.stop`); if one of them dies, the others are
stopped too.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from synchealth.logs import HANDED_BACK

HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
VERBOSE_VARIABLE = "SYNCHEALTH_RUN_VERBOSE"
ROOT = Path(__file__).resolve().parent.parent
# How long the web server, the worker and beat have to come up, and everything to stop.
START_SECONDS = 120.0
STOP_SECONDS = 2.5

# runserver's line for each request: [28/Nov/2026 12:08:28] "GET /path HTTP/1.1" 200 56052
_ACCESS = re.compile(r'^\[[^\]]+\] "[A-Z]+ (?P<path>\S+)[^"]*" (?P<status>\d{3}) ')
# Celery's lines for each task a worker takes and ends, for each of beat's
# sendings, and what a task says as it runs ("poll: 3 companies queued").
_TASK = re.compile(
    r"^\[[^\]]*: INFO/(ForkPoolWorker-\d+\] |[^\]]+\] "
    r"(Task \S+\[[0-9a-f-]+\] (received|succeeded in )|Scheduler: Sending due task ))"
)
# The traffic generator's line for each expense it posts.
_TRAFFIC = re.compile(r"^posted \d+ expense\(s\) for ")
# What a worker says to the person at its own terminal as it stops ("Hitting
# Ctrl+C again will…"); the console's Ctrl-C never reaches it.
_WORKER_TERMINAL = re.compile(r"^worker: (Hitting Ctrl\+C again|(Cold|Warm) shutdown \()")
_WORKER_READY = re.compile(r"\] celery@\S+ ready\.$")
_BEAT_READY = re.compile(r"\] beat: Starting\.\.\.$")


def var_dir() -> Path:
    return Path(os.environ.get("SYNCHEALTH_VAR_DIR", ROOT / "var"))


def chatter(line: str) -> bool:
    """Whether `line` stays off the quiet console (it still goes to the log file).

    The lines every request and task make: the sandbox's requests whatever
    their answer (its faults are on purpose, and the client logs the retries
    that matter), the dashboard's own requests that went well, the tasks a
    worker received and finished, beat's sendings and the traffic generator's
    posts. And the worker's words to a terminal it does not have, and blank
    lines. A dashboard request that failed, a task that failed and every
    warning stay.
    """
    if not line.strip():
        return True
    access = _ACCESS.match(line)
    if access:
        return access["path"].startswith("/sandbox/") or int(access["status"]) < 400
    return any(pattern.match(line) for pattern in (_TASK, _TRAFFIC, _WORKER_TERMINAL))


def verbose_requested(argv: list[str]) -> bool:
    parser = argparse.ArgumentParser(
        prog="python -m synchealth.run", description="Run Sync Health with the embedded defaults."
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show every request and task on the console too (or {VERBOSE_VARIABLE}=1)",
    )
    options = parser.parse_args(argv)
    value = os.environ.get(VERBOSE_VARIABLE, "").strip().lower()
    if value not in {"", "1", "0", "true", "false", "yes", "no", "on", "off"}:
        parser.error(f"{VERBOSE_VARIABLE}={value!r} is not a yes/no value: use 1 or 0.")
    return bool(options.verbose) or value in {"1", "true", "yes", "on"}


class Console:
    """Where the processes' lines go: all to the log file, and to the console
    unless the console is quiet and the line is chatter."""

    def __init__(self, log_path: Path, *, verbose: bool) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # The previous run's log is kept beside this one, and no older.
        if log_path.exists():
            log_path.replace(log_path.with_name(log_path.name + ".1"))
        self.log_path = log_path
        self.verbose = verbose
        self._log = log_path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self._pumps: list[threading.Thread] = []

    def line(self, text: str) -> None:
        with self._lock:
            self._log.write(text + "\n")
            if self.verbose or not chatter(text):
                self._show(text)

    def say(self, text: str) -> None:
        """Our own words: always on the console."""
        with self._lock:
            self._log.write(text + "\n")
            self._show(text)

    @staticmethod
    def _show(text: str) -> None:
        # A console that went away (a closed terminal, a pipe whose reader
        # ended) must not stop the copying: a process whose output is not
        # read stops too, once the pipe is full.
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def follow(self, stream: IO[str], on_line: Callable[[str], None] | None = None) -> None:
        """Copy a process's output line by line, in a thread, until it closes."""

        def pump() -> None:
            for raw in stream:
                text = raw.rstrip("\n")
                self.line(text)
                if on_line is not None:
                    on_line(text)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        self._pumps.append(thread)

    def close(self, last_words: str) -> None:
        """Once the processes have ended: their last lines, ours, and the file closed."""
        for thread in self._pumps:
            thread.join(timeout=1)
        self.say(last_words)
        with self._lock:
            self._log.close()


class Stopping(Exception):
    """Ctrl-C (or SIGTERM) arrived while the processes were being prepared."""


class StepFailed(Exception):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"{name} failed with {code}")
        self.name = name
        self.code = code


class Supervisor:
    """Starts the processes and stops them.

    Each runs in a session of its own, so that a terminal's Ctrl-C reaches
    only this process, which stops each of them in its own way.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.stopping = threading.Event()
        self.children: dict[str, subprocess.Popen[str]] = {}
        self.worker_ready = threading.Event()
        self.beat_ready = threading.Event()
        self.handed_back = threading.Event()

    def handle_signals(self) -> None:
        def stop(*_: object) -> None:
            self.stopping.set()

        # Ctrl-C, a stop from elsewhere, and the terminal closing.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)

    def start(self, name: str, command: list[str]) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        assert child.stdout is not None
        watch = {"worker": self._watch_worker, "beat": self._watch_beat}.get(name)
        self.console.follow(child.stdout, watch)
        self.children[name] = child
        return child

    def _watch_worker(self, line: str) -> None:
        if _WORKER_READY.search(line):
            self.worker_ready.set()
        elif line.endswith(HANDED_BACK):
            self.handed_back.set()

    def _watch_beat(self, line: str) -> None:
        if _BEAT_READY.search(line):
            self.beat_ready.set()

    def up(self) -> bool:
        """Whether the worker and beat are ready and the web server answers."""
        return self.worker_ready.is_set() and self.beat_ready.is_set() and web_answers()

    def step(self, name: str, command: list[str]) -> None:
        """Run a preparation step to its end (or stop it on Ctrl-C)."""
        child = self.start(name, command)
        while child.poll() is None:
            if self.stopping.wait(0.2):
                raise Stopping
        del self.children[name]
        if child.returncode:
            raise StepFailed(name, child.returncode)

    def died(self) -> tuple[str, int] | None:
        for name, child in self.children.items():
            if child.poll() is not None:
                return name, child.returncode
        return None

    def stop(self) -> None:
        """Stop every process within STOP_SECONDS, losing no task.

        The worker gets SIGQUIT: it puts its unfinished tasks back on the
        broker with those it had prefetched (synchealth.celery.HandBackOnQuit)
        and says so, and is killed then; the next start runs them again.
        Celery's own cold shutdown, which would follow, takes seconds and only
        tidies up. The others end on SIGTERM. Whatever is left at the end is
        killed, with its process group.
        """
        worker = self.children.get("worker")
        hand_back = worker is not None and worker.poll() is None and self.worker_ready.is_set()
        for child in self.children.values():
            if child.poll() is not None:
                continue
            if child is worker:
                # Its main process only: its pool's processes are its own to stop.
                os.kill(child.pid, signal.SIGQUIT if hand_back else signal.SIGTERM)
            else:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        if hand_back and worker is not None:
            if self.handed_back.wait(STOP_SECONDS):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
            else:
                self.console.say(
                    "  The worker did not say it had put its unfinished tasks back on the "
                    "broker; those it held may be lost."
                )
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.05, deadline - time.monotonic()))
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def webhook_secret() -> str:
    """The demo's webhook signing secret, made once and kept under var/."""
    import base64
    import secrets

    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    path = var / "webhook-secret.txt"
    secret = path.read_text().strip() if path.exists() else ""
    if not secret:
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        path.write_text(secret + "\n")
        path.chmod(0o600)
    return secret


def banner(login: str, log_path: Path, *, verbose: bool) -> str:
    """What `make run` prints once everything is up: where to go and the demo login.

    Only demo values: never the API key nor the webhook secret, since terminal
    output is scrolled back, shared and pasted into tickets.
    """
    shown = (
        "Every request and task is shown here too"
        if verbose
        else "Requests and tasks go there only (make run VERBOSE=1 shows them here)"
    )
    return (
        f"\n  Sync Health is ready on http://{HOST}:{PORT}/\n"
        f"  {login}\n"
        f"  Sandbox upstream: http://{HOST}:{PORT}/sandbox\n"
        f"  Log: {log_path}\n"
        f"  {shown}.\n"
        "  Press Ctrl-C to stop everything.\n"
    )


def celery_command(*, verbose: bool) -> list[str]:
    # Quiet: without the banners (settings, queues, every task's name).
    return [sys.executable, "-m", "celery", "-A", "synchealth", *([] if verbose else ["--quiet"])]


def worker_command(*, verbose: bool) -> list[str]:
    # One worker: nobody to mingle or gossip with, which also spares their
    # broadcasts at start and stop.
    return [*celery_command(verbose=verbose), "worker", "--loglevel", "INFO",
            "--concurrency", "2", "--without-mingle", "--without-gossip"]  # fmt: skip


def web_answers() -> bool:
    """Whether the web server answers its liveness probe."""
    try:
        wildcard = ipaddress.ip_address(HOST.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    host = "127.0.0.1" if wildcard else HOST
    try:
        with urllib.request.urlopen(f"http://{host}:{PORT}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    verbose = verbose_requested(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SANDBOX_ENABLED", "1")
    os.environ.setdefault("CODAT_BASE_URL", f"http://{HOST}:{PORT}/sandbox")
    os.environ.setdefault("CODAT_API_KEY", os.environ.get("SANDBOX_API_KEY", "sandbox-demo-key"))
    # Both ends are on this machine: a roomier budget than Codat's, so the
    # first pull of the demo estate takes seconds rather than minutes.
    os.environ.setdefault("SANDBOX_RATE_LIMIT_PER_MINUTE", "6000")
    os.environ.setdefault("CODAT_RATE_LIMIT_PER_MINUTE", "5000")
    os.environ.setdefault("CODAT_WEBHOOK_SECRET", webhook_secret())
    # Lines as they are written, not when a pipe's buffer fills.
    os.environ["PYTHONUNBUFFERED"] = "1"

    console = Console(var_dir() / "log" / "run.log", verbose=verbose)
    supervisor = Supervisor(console)
    supervisor.handle_signals()
    console.say(f"\n  Starting Sync Health on http://{HOST}:{PORT}/ (log: {console.log_path})\n")
    exit_code = 1
    try:
        exit_code = run(supervisor, verbose=verbose)
    except Stopping:
        exit_code = 130
    except StepFailed as exc:
        console.say(f"\n  {exc.name} failed with {exc.code}.")
        exit_code = exc.code
    finally:
        console.say("  Stopping…")
        supervisor.stop()
        console.close("  Stopped.")
    return exit_code


def run(supervisor: Supervisor, *, verbose: bool) -> int:
    """Prepare, start everything, say where to go, and wait for Ctrl-C or a death."""
    console = supervisor.console
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    supervisor.step("migrate", [*manage, "migrate", "--no-input", "-v", "0"])
    # After an upgrade: the current state of companies mirrored before it (resumable).
    supervisor.step("build_current_state", [*manage, "build_current_state"])
    supervisor.step("sandbox_seed", [*manage, "sandbox_seed", "--preset", "demo", "--if-empty"])
    demo_login = subprocess.run(
        [*manage, "demo_login"], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    if demo_login.returncode:
        raise StepFailed("demo_login", demo_login.returncode)
    login = demo_login.stdout.strip()
    # The sandbox signs its webhooks to this dashboard's receiver.
    webhook = [*manage, "sandbox_webhook", "--url", f"http://{HOST}:{PORT}/webhooks/codat",
               "--secret", os.environ["CODAT_WEBHOOK_SECRET"]]  # fmt: skip
    supervisor.step("sandbox_webhook", webhook)

    supervisor.start("web", [*manage, "runserver", f"{HOST}:{PORT}", "--noreload"])
    supervisor.start("worker", worker_command(verbose=verbose))
    supervisor.start("beat", [*celery_command(verbose=verbose), "beat", "--loglevel", "INFO"])
    # The first reconciliation now, not at beat's first tick.
    supervisor.step("refresh", [*manage, "refresh", "--all", "--enqueue"])

    deadline = time.monotonic() + START_SECONDS
    up = False
    while not supervisor.stopping.wait(0.25):
        died = supervisor.died()
        if died:
            console.say(f"\n  {died[0]} exited with {died[1]}; stopping the rest.")
            return died[1] or 1
        if up:
            continue
        if supervisor.up():
            # Once the server answers, so that its first posts are not refused.
            traffic = [*manage, "sandbox_traffic", "--base-url",
                       f"http://{HOST}:{PORT}/sandbox", "--interval", "8"]  # fmt: skip
            supervisor.start("traffic", traffic)
            console.say(banner(login, console.log_path, verbose=verbose))
            up = True
        elif time.monotonic() > deadline:
            console.say(f"\n  Not up within {START_SECONDS:.0f} s; stopping.")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
