"""The deployment in deploy/: systemd units, their environment file, the nginx example.

systemd accepts every unit (`systemd-analyze verify`, which also checks that
each command exists), installed at this checkout instead of /opt/synchealth.
The web server, worker and beat then start from their units' own commands,
working directories and environment (deploy/synchealth.env, with this
machine's services and secrets of the test's own): gunicorn tells systemd it
is ready as `Type=notify` expects and serves a page through the proxy's
headers, the worker is ready, and beat's schedule reaches the worker. The
nginx example sets exactly the headers the environment file trusts.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings

from tests.support.databases import require_client_programs
from tests.support.deploy import ROOT
from tests.support.services import only_on_postgresql, require
from tests.workers import database_url

DEPLOY = ROOT / "deploy"
PREFIX = "/opt/synchealth"
ENVIRONMENT_FILE = "/etc/synchealth/synchealth.env"
UNITS = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))
REDIS_URL = os.environ.get("TEST_UNITS_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]]

    def service(self, key: str) -> list[str]:
        return self.sections.get("Service", {}).get(key, [])


def parse(text: str, name: str = "") -> Unit:
    """A unit file's sections and their settings (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return Unit(name, sections)


def environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as systemd's EnvironmentFile= reads the ones we write."""
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def installed(text: str, environment: Path) -> str:
    """A unit's text as if this checkout were installed at /opt/synchealth."""
    text = text.replace(f"{PREFIX}/.venv", sys.prefix)
    return text.replace(PREFIX, str(ROOT)).replace(ENVIRONMENT_FILE, str(environment))


def test_systemd_accepts_every_unit(tmp_path):
    verify = shutil.which("systemd-analyze")
    require(verify is not None, "systemd-analyze")
    environment = tmp_path / "synchealth.env"
    shutil.copy(DEPLOY / "synchealth.env", environment)
    for unit in UNITS:
        (tmp_path / unit.name).write_text(installed(unit.read_text(), environment))
    done = subprocess.run(
        [verify, "verify", *(str(tmp_path / unit.name) for unit in UNITS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # It exits 0 after a misspelt key or value, but says so.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_units_share_one_user_environment_and_state_directory():
    services = [parse(unit.read_text(), unit.name) for unit in UNITS if unit.suffix == ".service"]
    assert {unit.name for unit in services} == {
        "synchealth-web.service",
        "synchealth-worker.service",
        "synchealth-beat.service",
        "synchealth-backup.service",
    }
    for unit in services:
        assert unit.service("User") == ["synchealth"], unit.name
        assert unit.service("EnvironmentFile") == [ENVIRONMENT_FILE], unit.name
        assert unit.service("ProtectSystem") == ["strict"], unit.name
        assert unit.service("StateDirectory")[0].startswith("synchealth"), unit.name
    settings = environment_file(DEPLOY / "synchealth.env")
    # ProtectSystem=strict: the app writes under its state directory only.
    assert settings["SYNCHEALTH_VAR_DIR"] == "/var/lib/synchealth"
    assert settings["STATIC_ROOT"].startswith("/var/lib/synchealth/")


def test_the_proxy_sets_what_the_environment_trusts():
    nginx = (DEPLOY / "nginx-synchealth.conf").read_text()
    settings = environment_file(DEPLOY / "synchealth.env")
    web = parse((DEPLOY / "synchealth-web.service").read_text())
    bind = re.search(r"--bind (\S+)", web.service("ExecStart")[0])[1]

    assert re.search(rf"upstream synchealth \{{\s*server {re.escape(bind)};", nginx)
    assert settings["TRUSTED_PROXIES"] == bind.split(":")[0]
    # The header Django reads (HTTP_X_FORWARDED_PROTO), overwritten on every request.
    header, value = settings["SECURE_PROXY_SSL_HEADER"].split(",")
    assert header == "HTTP_X_FORWARDED_PROTO" and value == "https"
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    # Appended to, so the app can read it from the right past its proxies.
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx
    assert "proxy_set_header Host $host;" in nginx
    host = settings["ALLOWED_HOSTS"]
    assert f"server_name {host};" in nginx
    assert settings["CSRF_TRUSTED_ORIGINS"] == f"https://{host}"
    # Webhook bodies up to the app's own cap reach it.
    cap = re.search(r"location = /webhooks/codat \{\s*client_max_body_size (\d+)m;", nginx)
    assert cap and int(cap[1]) * 2**20 >= django_settings.WEBHOOK_MAX_BODY_BYTES


# --- The units' own commands, started ---


def _command(unit: Unit, environment: Path, port: int) -> list[str]:
    (start,) = unit.service("ExecStart")
    command = installed(start, environment).split()
    if "--bind" in command:
        command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
        command[command.index("--workers") + 1] = "1"  # two cores, shared
    return command


@dataclass
class Started:
    process: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _wait(condition, what: str, started: dict[str, Started], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        for name, one in started.items():
            if one.process.poll() is not None:
                pytest.fail(f"{name} exited with {one.process.returncode}:\n{one.text()}")
        time.sleep(0.3)
    logs = "\n".join(f"--- {name}\n{one.text()[-3000:]}" for name, one in started.items())
    pytest.fail(f"no {what} within {seconds} s\n{logs}")


@pytest.fixture
def running_units(transactional_db, tmp_path, free_tcp_port_factory) -> Iterator[tuple]:
    """web, worker and beat from their units; (their processes, the web port, ready datagrams)."""
    from tests.workers import redis_available

    require(redis_available(), "Redis")
    environment = tmp_path / "synchealth.env"
    shutil.copy(DEPLOY / "synchealth.env", environment)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **environment_file(environment),
        # This machine's services, and what the example leaves for you to fill.
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CODAT_API_KEY": "a-codat-api-key",
        "CODAT_WEBHOOK_SECRET": "whsec_" + "A" * 32,
        # Beat's reconciliation must not reach the real Codat from a test.
        "CODAT_BASE_URL": "http://127.0.0.1:9",
        "SYNCHEALTH_VAR_DIR": str(tmp_path / "var"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    if "PYTHONPATH" in os.environ:  # a shared virtualenv: this checkout first
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    notify = tmp_path / "notify.sock"
    ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ready.bind(str(notify))
    ready.settimeout(0.1)
    port = free_tcp_port_factory()
    started: dict[str, Started] = {}
    try:
        for name in ("web", "worker", "beat"):
            unit = parse((DEPLOY / f"synchealth-{name}.service").read_text())
            unit_env = dict(env)
            for assignment in unit.service("Environment"):
                key, _, value = installed(assignment, environment).partition("=")
                unit_env[key] = value
            if unit.service("Type") == ["notify"]:
                unit_env["NOTIFY_SOCKET"] = str(notify)
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    _command(unit, environment, port),
                    cwd=installed(unit.service("WorkingDirectory")[0], environment),
                    env=unit_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            started[name] = Started(process, log)
        yield started, port, ready
    finally:
        for one in started.values():
            if one.process.poll() is None:
                os.killpg(one.process.pid, signal.SIGTERM)
        for one in started.values():
            try:
                one.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(one.process.pid, signal.SIGKILL)
                one.process.wait()
        ready.close()


def _received(ready: socket.socket) -> str:
    try:
        return ready.recv(4096).decode()
    except TimeoutError:
        return ""


@pytest.mark.system
@pytest.mark.timeout(240)
def test_web_worker_and_beat_start_from_their_units(running_units):
    started, port, ready = running_units
    messages: list[str] = []

    def notified() -> bool:
        messages.append(_received(ready))
        return any("READY=1" in message for message in messages)

    _wait(notified, "READY=1 from gunicorn", started)

    page = httpx.get(
        f"http://127.0.0.1:{port}/accounts/login/",
        headers={"Host": "synchealth.example.com", "X-Forwarded-Proto": "https"},
        timeout=10,
    )
    assert page.status_code == 200
    assert "Secure" in page.headers["set-cookie"]

    _wait(lambda: "ready." in started["worker"].text(), "ready worker", started)
    _wait(lambda: "beat: Starting..." in started["beat"].text(), "beat", started)
    # Beat sends the sandbox's sweep every five seconds; the worker runs it.
    _wait(
        lambda: re.search(
            r"Task sandbox\.finalize_due\[[^\]]+\] succeeded", started["worker"].text()
        ),
        "a task from beat run by the worker",
        started,
    )


@pytest.mark.system
@only_on_postgresql("backups are of a PostgreSQL deployment")
def test_the_backup_unit_writes_a_dated_backup_and_keeps_fourteen_days(transactional_db, tmp_path):
    require_client_programs()
    unit = parse((DEPLOY / "synchealth-backup.service").read_text())
    backups = tmp_path / "backups"
    backups.mkdir()
    day = 24 * 3600
    for name, age in [
        ("synchealth-20000101T0000Z.dump", 20),
        ("synchealth-20000102T0000Z.dump", 2),
    ]:
        (backups / name).write_bytes(b"an older backup")
        os.utime(backups / name, (time.time() - age * day,) * 2)
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **environment_file(DEPLOY / "synchealth.env"),
        "DATABASE_URL": database_url(),
        "STATE_DIRECTORY": str(backups),  # what StateDirectory= gives the service
    }
    for key in ("ExecStart", "ExecStartPost"):
        (line,) = unit.service(key)
        line = installed(line, tmp_path / "synchealth.env").replace("%%", "%")  # systemd's escape
        command = shlex.split(line.replace("/var/lib/synchealth/backups", str(backups)))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    kept = sorted(path.name for path in backups.iterdir())
    assert kept[0] == "synchealth-20000102T0000Z.dump"  # fourteen days: the older one went
    assert len(kept) == 2 and re.fullmatch(r"synchealth-\d{8}T\d{4}Z\.dump", kept[1])
