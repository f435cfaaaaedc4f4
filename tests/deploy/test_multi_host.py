"""The multi-machine deployment of docs/deploy.md ("Several machines"), on one machine.

Three hosts, each a network namespace with its own address, working
directory and `SYNCHEALTH_VAR_DIR` (tests/support/netns.py): a web host
(gunicorn) and two worker hosts (Celery), whose wall clocks are set 3
seconds apart (tests/support/skewed_clock.c, preloaded). They share, over
the hosts' network only, what the guide says they share: PostgreSQL (this
machine's, which listens on 127.0.0.1 alone, reached through a forwarder on
the network's address, so its configuration and authentication stay as
they are), a Redis of their own bound to that address with a password, and
the upstream (the sandbox, its own gunicorn there). Every host has the same
secret key, database, broker and budget settings, as the guide asks.

A lead signs in on the web host, as through the TLS proxy, and confirms two
bulk retries there; the workers do the rest.

1. Company B's 30 syncs, with a budget of 20 requests per 3 seconds: the
   sandbox's request log shows the two hosts together inside the budget
   (per-host budgets would let 30 through at once), both hosts posting, and
   each sync posted once.
2. Company A's 30 syncs, the upstream holding each POST's answer 2.5 seconds:
   the two hosts' 16 threads keep 10 requests in flight for the company and
   never more (more than one host's 8 threads, so both hosts' requests were
   in flight together). Host w2 is killed (every process in its namespace,
   at once) while it posts; the other host takes its requests over after
   the visibility timeout and the retry lease: each sync is posted once
   (the upstream ignores Idempotency-Key here, so a second POST would start
   a second sync), and every sync the upstream started is linked.

The budget's check allows for the time between taking a request from the
budget (Redis's clock) and the sandbox logging it: a second of the window's
three. Needs root, PostgreSQL, `redis-server` and a C compiler: CI has them
all, and fails rather than skips when one is missing.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse

from dashboard import models as mirror
from sandbox import models as sb
from sandbox.models import SandboxSettings
from tests.support.bulk import review_post
from tests.support.bulk_estate import (
    build_failed_estate,
    duplicate_posts,
    max_in_flight_per_company,
)
from tests.support.deploy import ROOT, production_environment
from tests.support.netns import Host, NamespacesUnavailable, Network, die_with_parent, skewed_clock
from tests.support.services import REQUIRE_SERVICES, only_on_postgresql
from tests.support.tcp_proxy import TcpProxy
from tests.support.users import PASSWORD, make_user
from tests.workers import database_url, wait_for

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(150),
    only_on_postgresql("the hosts share PostgreSQL over their network, as machines do"),
]

# Worker hosts and their clocks (ns): 3 seconds apart (the web host keeps the real time).
CLOCKS = {"w1": 1_500_000_000, "w2": -1_500_000_000}
THREADS = 8  # per worker host: 16 in all, more than the per-company cap
CAP = 10  # CODAT_MAX_IN_FLIGHT_PER_COMPANY, its default
PER_WINDOW, WINDOW = 20, 3  # the shared budget: 20 requests per 3 seconds
SLACK = 1.0  # seconds between a request's slot in the budget and the sandbox's log of it
SYNCS = 30  # per company, about (the estate leaves out a sync that has no items)
POST_DELAY_MS = 2500  # the upstream's answer to a POST, held back (phase 2)
# Short, so a dead host's work comes back within seconds. Each must exceed the
# clocks' disagreement plus the longest a task or a request runs (the guide, "Clocks").
TIMEOUTS = {
    "CELERY_VISIBILITY_TIMEOUT": "15",
    "RETRY_CLAIM_LEASE_SECONDS": "10",
    "CODAT_REQUEST_LEASE_SECONDS": "8",
    "CODAT_MAX_WAIT_SECONDS": "3",
    "CODAT_MAX_RETRY_SECONDS": "4",
}
STARTUP_SECONDS = 60


def _in_ci() -> bool:
    return REQUIRE_SERVICES or os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str) -> NoReturn:
    """Fail in CI, skip elsewhere: the test needs this machine to allow `what`."""
    message = f"the multi-host test needs {what}"
    if _in_ci():
        pytest.fail(f"{message}; CI must run it (as root, with redis-server and cc)")
    pytest.skip(message)


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


# --- the web host, as the TLS proxy in front of it passes requests on ---


class _BehindTheProxy(httpx.BaseTransport):
    """What the reverse proxy does: TLS ends there, the request goes on over
    plain HTTP with `X-Forwarded-Proto: https` (the client sees https, and so
    sends the Secure cookies)."""

    def __init__(self) -> None:
        self._http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http")
        request.headers["X-Forwarded-Proto"] = "https"
        return self._http.handle_request(request)

    def close(self) -> None:
        self._http.close()


class WebClient:
    """A browser of the web host: `get` and `post` as tests/support/bulk.py calls them."""

    def __init__(self, address: str) -> None:
        self.http = httpx.Client(
            base_url=f"https://{address}", transport=_BehindTheProxy(), timeout=30
        )

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def post(self, path: str, data: dict) -> httpx.Response:
        token = self.http.cookies["csrftoken"]
        referer = str(self.http.base_url.join(path))
        return self.http.post(
            path, data={**data, "csrfmiddlewaretoken": token}, headers={"Referer": referer}
        )

    def sign_in(self, username: str, password: str) -> None:
        assert self.get(reverse("login")).status_code == 200
        answer = self.post(reverse("login"), {"username": username, "password": password})
        assert answer.status_code == 302, answer.text[:2000]

    def confirm_bulk(self, scope: str) -> mirror.BulkRetry:
        """Open the preview of `scope` and confirm it as shown: the web host queues the rest."""
        opened = self.get(reverse("bulk-retry") + "?" + scope)
        assert opened.status_code == 302, opened.text[:2000]
        bulk = mirror.BulkRetry.objects.latest("pk")
        confirmed = review_post(self, bulk, confirm=True)  # type: ignore[arg-type]
        assert confirmed.status_code == 302, confirmed.text[:2000]
        assert confirmed.headers["location"] == reverse("bulk-detail", args=[bulk.pk])
        return bulk

    def close(self) -> None:
        self.http.close()


# --- the deployment ---


@dataclass
class Deployment:
    network: Network
    folder: Path
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    services: list[subprocess.Popen] = field(default_factory=list)
    proxy: TcpProxy | None = None
    web_address: str = ""  # host:port
    upstream: str = ""  # the sandbox's root URL

    def host(self, name: str) -> Host:
        return self.network.hosts[name]

    def log(self, name: str) -> Path:
        return self.folder / name / f"{name}.log"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """Start `argv` on host `name`, in its own working directory."""
        home = self.folder / name
        with self.log(name).open("ab") as out:
            self.processes[name] = self.host(name).popen(
                argv, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def worker_lines(self, name: str, pattern: str) -> int:
        return len(re.findall(pattern, self.log(name).read_text(errors="replace")))

    def alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name).read_text()}")


def _wait_ready(deployment: Deployment) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS

    def serving(url: str) -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    for name in ("web", "w1", "w2"):
        while True:
            deployment.alive(name)
            ready = (
                serving(f"http://{deployment.web_address}/healthz")
                if name == "web"
                else " ready." in deployment.log(name).read_text(errors="replace")
            )
            if ready:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not start:\n{deployment.log(name).read_text()}")
            time.sleep(0.2)
    wait_for(lambda: serving(f"{deployment.upstream}/healthz"), 30, "the upstream")


@pytest.fixture
def deployment(transactional_db, tmp_path) -> Iterator[Deployment]:
    clock = skewed_clock(tmp_path)
    if clock is None:
        _unavailable("a C compiler, cc, to build the skewed clock (apt-get install gcc)")
    if shutil.which("redis-server") is None:
        _unavailable("redis-server")
    try:
        network = Network(["web", "w1", "w2"]).up()
    except NamespacesUnavailable as exc:
        _unavailable(f"network namespaces and veth links (ip netns, as root): {exc}")
    deployment = Deployment(network, tmp_path)
    try:
        _start(deployment, str(clock))
        yield deployment
    finally:
        for process in [*deployment.processes.values(), *deployment.services]:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        if deployment.proxy is not None:
            deployment.proxy.stop()  # ends the hosts' database sessions
        network.down()
        assert not network.leftovers(), network.leftovers()


def _service(deployment: Deployment, name: str, argv: list[str], **kwargs) -> None:
    """A process of the services' machine (this namespace), logging to its folder."""
    with (deployment.folder / name / f"{name}.log").open("ab") as out:
        deployment.services.append(
            subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, **kwargs
            )
        )


def _start(deployment: Deployment, clock: str) -> None:
    network, folder = deployment.network, deployment.folder
    gateway = network.gateway
    for name in ("upstream", "redis", "web", "w1", "w2"):
        (folder / name / "var").mkdir(parents=True)

    # Redis, bound to the hosts' network only, with a password.
    password = secrets.token_urlsafe(16)
    redis_port = _free_port(gateway)
    redis_server = [
        "redis-server", "--bind", gateway, "--port", str(redis_port), "--requirepass", password,
        "--save", "", "--appendonly", "no", "--dir", str(folder / "redis"),
    ]  # fmt: skip
    _service(deployment, "redis", redis_server)

    # PostgreSQL listens on 127.0.0.1 alone: the hosts reach it through here.
    database = urlsplit(database_url())
    deployment.proxy = TcpProxy(
        (database.hostname or "127.0.0.1", database.port or 5432), host=gateway
    )
    deployment.proxy.start()
    host_database = database._replace(
        netloc=f"{database.username}@{gateway}:{deployment.proxy.port}"
    ).geturl()

    # The upstream: the sandbox, served on the hosts' network by a gunicorn of its own.
    sandbox_port = _free_port(gateway)
    deployment.upstream = f"http://{gateway}:{sandbox_port}"
    upstream_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "SANDBOX_ENABLED": "1",
        "ALLOWED_HOSTS": gateway,
        "CELERY_BROKER_URL": "memory://",
        "REDIS_URL": "",
        "SYNCHEALTH_ALLOW_INSECURE_SECRET": "1",
        "SYNCHEALTH_VAR_DIR": str(folder / "upstream" / "var"),
        "HOME": str(folder / "upstream"),
    }
    upstream = [
        sys.executable, "-m", "gunicorn", "synchealth.wsgi:application",
        "--bind", f"{gateway}:{sandbox_port}", "--workers", "1", "--threads", "32",
    ]  # fmt: skip
    _service(deployment, "upstream", upstream, cwd=ROOT, env=upstream_env)

    # What every host shares (the guide, "Several machines").
    shared = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": host_database,
        "CELERY_BROKER_URL": f"redis://:{password}@{gateway}:{redis_port}/0",
        "CODAT_BASE_URL": f"{deployment.upstream}/sandbox",
        "CODAT_API_KEY": settings.SANDBOX_API_KEY,
        "CODAT_RATE_LIMIT_PER_MINUTE": str(PER_WINDOW),
        "CODAT_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
        **TIMEOUTS,
        # Each host runs this checkout's code from its own working directory.
        "PYTHONPATH": str(ROOT),
    }
    homes = {name: {"HOME": str(folder / name)} for name in ("web", *CLOCKS)}
    web = network.hosts["web"]
    deployment.web_address = f"{web.address}:8000"
    deployment.env["web"] = production_environment(
        folder / "web" / "var",
        **shared,
        **homes["web"],
        ALLOWED_HOSTS=web.address,
        # The proxy, on the machine of the services.
        TRUSTED_PROXIES=gateway,
        # Static files read where they are, without collectstatic's minute
        # (tests/deploy/test_production_server.py serves the collected ones).
        SYNCHEALTH_ALLOW_INSECURE_SECRET="1",
    )
    gunicorn = [
        sys.executable, "-m", "gunicorn", "synchealth.wsgi:application",
        "--bind", deployment.web_address, "--workers", "1",
    ]  # fmt: skip
    deployment.start("web", gunicorn, deployment.env["web"])
    for name, offset in CLOCKS.items():
        deployment.env[name] = production_environment(
            folder / name / "var",
            **shared,
            **homes[name],
            LD_PRELOAD=clock,
            SKEWED_CLOCK_NS=str(offset),
        )
        worker = [
            sys.executable, "-m", "celery", "-A", "synchealth", "worker",
            "--pool", "threads", "--concurrency", str(THREADS), "-n", f"worker@{name}",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
        ]  # fmt: skip
        deployment.start(name, worker, deployment.env[name])
    ping = [
        "redis-cli", "-h", gateway, "-p", str(redis_port), "--no-auth-warning", "-a", password,
        "ping",
    ]  # fmt: skip
    wait_for(
        lambda: subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG",
        15,
        "Redis",
    )


# --- what the sandbox saw ---


def _host_clock(deployment: Deployment, name: str) -> float:
    """The time on host `name` minus ours, in seconds."""
    env = deployment.env[name]
    preload = {k: env[k] for k in ("LD_PRELOAD", "SKEWED_CLOCK_NS")}
    before = time.time()
    done = subprocess.run(
        deployment.host(name).command(["python3", "-c", "import time; print(time.time())"]),
        env={**os.environ, **preload}, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return float(done.stdout) - (before + time.time()) / 2


def _most_in_any_span(times: list[float], span: float) -> int:
    """The most of `times` (seconds) inside any interval of length `span`."""
    times = sorted(times)
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= span:
            first += 1
        most = max(most, last - first + 1)
    return most


def _wait_settled(bulk: mirror.BulkRetry, timeout: float, what: str) -> None:
    """Until every sync of the bulk retry has its request, each posted or ended."""
    requests = mirror.RetryRequest.objects.filter(bulk=bulk)
    members = bulk.members.count()
    open_states = ("queued", "running")
    try:
        wait_for(
            lambda: requests.count() == members and not requests.filter(state__in=open_states),
            timeout,
            what,
        )
    except AssertionError as exc:
        unsettled = requests.filter(state__in=open_states).values_list(
            "pk", "state", "attempts", "posted_at", "lease_until", "reason"
        )
        raise AssertionError(f"{exc}; open: {list(unsettled)}") from None


def _posts(company_id) -> dict[str, int]:
    """Accepted initiate-sync POSTs for the company, by idempotency key."""
    keys: dict[str, int] = {}
    for key in sb.RequestLog.objects.filter(
        method="POST", company_id=company_id, status__lt=300
    ).values_list("idempotency_key", flat=True):
        keys[key] = keys.get(key, 0) + 1
    return keys


def _exactly_once(bulk: mirror.BulkRetry, company_id) -> list[mirror.RetryRequest]:
    requests = list(mirror.RetryRequest.objects.filter(bulk=bulk))
    assert len(requests) == bulk.members.count() > 2 * THREADS  # every thread kept busy
    assert {r.state for r in requests} == {"submitted"}, [
        (r.pk, r.state, r.reason) for r in requests
    ]
    # One POST a sync, with its request's key; and every sync the upstream
    # started for the company is one a request holds.
    assert _posts(company_id) == {str(r.key): 1 for r in requests}
    started = set(
        sb.Sync.objects.filter(company__company_id=company_id, kind="retry").values_list(
            "sync_id", flat=True
        )
    )
    assert started == {r.new_sync_id for r in requests}
    assert len(started) == len(requests)
    return requests


def test_web_and_two_worker_hosts_share_the_budget_and_post_each_sync_once_even_when_one_dies(
    deployment: Deployment,
):
    config = SandboxSettings.load()
    config.idempotency_keys = False  # a second POST would start a second sync
    config.long_running_rate = 0
    config.request_log_enabled = True
    config.save()
    build_failed_estate(companies=2, syncs_per_company=SYNCS, items_per_sync=1)
    company_a, company_b = mirror.Company.objects.order_by("pk").values_list(
        "company_id", flat=True
    )
    lead = make_user("lead", "Support lead")
    # The hosts check passwords with the deployment's hasher, not this test run's.
    hasher = PBKDF2PasswordHasher()
    lead.password = hasher.encode(PASSWORD, hasher.salt())
    lead.save(update_fields=["password"])
    assert settings.CODAT_MAX_IN_FLIGHT_PER_COMPANY == CAP

    _wait_ready(deployment)
    apart = _host_clock(deployment, "w1") - _host_clock(deployment, "w2")
    assert 2 < apart < 4, f"the worker hosts' clocks are {apart:.1f}s apart"

    web = WebClient(deployment.web_address)
    try:
        web.sign_in("lead", PASSWORD)

        # 1. The budget, shared by both hosts.
        first = web.confirm_bulk(f"range=all&code=5130&company={company_b}")
        _wait_settled(first, 60, "the first bulk retry to be posted")
        _exactly_once(first, company_b)
        for name in CLOCKS:
            posted = deployment.worker_lines(name, r"dashboard\.run_retry\[.*\] succeeded")
            assert posted > 0, f"host {name} posted none of the bulk retry"
        starts = [
            moment.timestamp()
            for moment in sb.RequestLog.objects.values_list("started_at", flat=True)
        ]
        assert len(starts) > PER_WINDOW  # more than one window's worth: the budget held some
        assert _most_in_any_span(starts, WINDOW - SLACK) <= PER_WINDOW

        # 2. The per-company cap across hosts, and a host that dies mid-bulk.
        config.initiate_delay_ms = POST_DELAY_MS
        config.save()
        # The budget's window empties (so that the cap, not the budget, holds the
        # requests back), and the upstream reads its settings (at most a second old).
        time.sleep(WINDOW)
        w2_before = deployment.worker_lines("w2", r"dashboard\.run_retry\[.*\] received")
        second = web.confirm_bulk(f"range=all&code=5130&company={company_a}")
        wait_for(
            lambda: (
                sb.Sync.objects.filter(company__company_id=company_a, kind="retry").exists()
                and deployment.worker_lines("w2", r"dashboard\.run_retry\[.*\] received")
                > w2_before
            ),
            30,
            "host w2 to be posting",
        )
        killed = deployment.host("w2").kill()
        assert killed, "host w2 had processes to kill"
        deployment.processes["w2"].wait(timeout=10)
        _wait_settled(second, 90, "the second bulk retry, after host w2 died")
    finally:
        web.close()

    requests = _exactly_once(second, company_a)
    # Host w2 died holding requests; host w1 took them over.
    assert max(r.attempts for r in requests) >= 2
    assert duplicate_posts() == 0
    in_flight = max_in_flight_per_company()
    assert max(in_flight.values()) <= CAP, in_flight
    # More than one host's threads: both hosts had the company's requests in flight at once.
    assert in_flight[str(company_a)] > THREADS, in_flight
