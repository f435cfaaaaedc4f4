"""Health endpoints for load balancers and monitors, and who may read `/metrics`.

- `/healthz`: the process answers (no I/O at all: a liveness probe must not
  fail because the database is slow).
- `/readyz`: 200 when the database, the broker, the cache and the migrations
  are fine, else 503 naming what is not. It also reports whether the upstream
  answers and how fresh the mirror is, which never fail readiness: neither
  is fixed by taking this server out of the load balancer.
- `/metrics`: Prometheus's text, for a scraper that shows `METRICS_TOKEN`
  and/or comes from `METRICS_ALLOWED_IPS`; off (404) until one is set.

All three are public (`@login_not_required`): a monitor has no session. None
shows a secret, a URL or an error's own text (which may quote either); the
web server's log has the details.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe

from accounts.clientip import client_ip

from .metrics import exposition
from .upstream import Upstream, UpstreamError, failure_kind

log = logging.getLogger(__name__)

R = TypeVar("R", bound=HttpResponse)


class CheckFailed(Exception):
    """A readiness check's failure, in words fit for anyone to read."""


# --- /healthz ---


@login_not_required
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return _no_store(JsonResponse({"status": "ok"}))


# --- /readyz ---


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor} answered"


def check_broker() -> str:
    """The Celery broker takes tasks: Redis answers, or the file queue's folders are writable."""
    url = settings.CELERY_BROKER_URL
    scheme = url.partition(":")[0]
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return "Redis answered"
    if scheme == "filesystem":
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key, role in (
            ("data_folder_in", "queue"),
            ("processed_folder", "processed"),
            ("control_folder", "control"),
        ):
            folder = str(options[key])
            if not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)):
                log.warning("readyz: broker folder %s (%s) missing or read-only", folder, role)
                raise CheckFailed(f"The broker's {role} folder is missing or not writable.")
        return "the queue's folders are writable"
    if scheme == "memory":
        return "in-process queue (tests only)"
    from synchealth.celery import app

    with app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=0, timeout=3)
    return f"{scheme} answered"


def check_cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "ready", 10)
    try:
        if cache.get(key) != "ready":
            raise CheckFailed("The cache did not give back what was stored in it.")
    finally:
        cache.delete(key)
    return "stored and read back"


# Once every migration has been seen applied, this process need not look
# again: a new migration comes with new code, in a new process.
_migrated = False


def check_migrations() -> str:
    global _migrated
    if _migrated:
        return "all applied"
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise CheckFailed(f"Not applied: {shown}. Run `python manage.py migrate`.")
    _migrated = True
    return "all applied"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "broker": check_broker,
    "cache": check_cache,
    "migrations": check_migrations,
}


def _run(check: Callable[[], str]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail, ok = check(), True
    except CheckFailed as exc:
        detail, ok = str(exc), False
    except Exception as exc:
        log.warning("readyz: %s failed", check.__name__, exc_info=True)
        detail, ok = f"{type(exc).__name__} (the web server's log has the details)", False
    return {"ok": ok, "detail": detail, "seconds": round(time.monotonic() - started, 3)}


UPSTREAM_KEY = "health:upstream"


def upstream_status() -> dict[str, Any]:
    """Whether the upstream answers: asked at most every `HEALTH_UPSTREAM_CHECK_SECONDS`.

    The answer is kept in the cache (shared by every web process with Redis),
    so probes every few seconds cost one request a minute from the budget,
    and one request at a time asks while the others report the last answer.
    """
    every = settings.HEALTH_UPSTREAM_CHECK_SECONDS
    if every <= 0:
        return {"checked": False, "detail": "Not checked (HEALTH_UPSTREAM_CHECK_SECONDS is 0)."}
    known = cache.get(UPSTREAM_KEY)
    if known is None and cache.add(f"{UPSTREAM_KEY}:asking", 1, timeout=every):
        known = ask_upstream()
        cache.set(UPSTREAM_KEY, known, timeout=every)
    if known is None:
        return {"checked": False, "detail": "Being checked by another request."}
    return {"checked": True, **known}


def ask_upstream() -> dict[str, Any]:
    """One request for the first company: does the upstream answer, and to our key?

    It takes a request from the shared budget but never waits for one, and
    is tried once, within `HEALTH_UPSTREAM_TIMEOUT_SECONDS`.
    """
    timeout = settings.HEALTH_UPSTREAM_TIMEOUT_SECONDS
    result: dict[str, Any] = {"checked_at": timezone.now()}
    try:
        with Upstream(max_attempts=1, max_wait=0, timeout=timeout) as client:
            client.request(
                "GET", "/companies", operation="health_check", params={"page": 1, "pageSize": 1}
            )
    except UpstreamError as exc:
        kind = failure_kind(exc)
        return result | {
            "reachable": None if kind == "budget" else exc.status is not None,
            "status": exc.status,
            "detail": _UPSTREAM_FAILURES[kind].format(status=exc.status, timeout=timeout),
        }
    return result | {"reachable": True, "status": 200, "detail": "The upstream answered."}


_UPSTREAM_FAILURES = {
    "budget": "Not asked: the request budget is in use; the next check will ask.",
    "timeout": "No answer within {timeout} seconds.",
    "connection": "Could not connect to the upstream.",
    "rate_limited": "The upstream answered 429: rate limited.",
    "server_error": "The upstream answered {status}.",
    "client_error": "The upstream answered {status}: check CODAT_API_KEY and CODAT_BASE_URL.",
    "bad_response": "The upstream's answer could not be read.",
    "other": "The check failed (the web server's log has the details).",
}


def mirror_status() -> dict[str, Any]:
    """How fresh the mirror is: its least and most recently refreshed companies."""
    from .models import RefreshState

    now = timezone.now()
    refreshes = RefreshState.objects.aggregate(
        oldest=Min("last_success"), newest=Max("last_success")
    )
    oldest = exposition.age(refreshes["oldest"], now)
    newest = exposition.age(refreshes["newest"], now)
    return {
        "oldest_refresh": refreshes["oldest"],
        "oldest_refresh_age_seconds": None if oldest is None else round(oldest),
        "newest_refresh": refreshes["newest"],
        "newest_refresh_age_seconds": None if newest is None else round(newest),
    }


def _report(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return read()
    except Exception as exc:
        log.warning("readyz: %s failed", read.__name__, exc_info=True)
        return {"error": f"{type(exc).__name__} (the web server's log has the details)"}


@login_not_required
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(check) for name, check in CHECKS.items()}
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {
        "status": "not ready" if failing else "ready",
        "failing": failing,
        "checks": checks,
        # Reported, never failing readiness.
        "upstream": _report(upstream_status),
        "mirror": _report(mirror_status),
    }
    return _no_store(JsonResponse(body, status=503 if failing else 200))


# --- /metrics ---


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Why this request may not read the metrics; None when it may.

    Every guard that is set must pass: the address (behind trusted proxies,
    the client's own, `accounts.clientip`) and the bearer token. With neither
    set the metrics are off, and the endpoint answers 404 as if it did not
    exist, as the password reset and single sign-on pages do when unset.
    """
    token, allowed = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed:
        return _plain(
            404,
            "Metrics are off. Set METRICS_TOKEN and/or METRICS_ALLOWED_IPS to serve them "
            "(README, Health and metrics).",
        )
    if allowed and not _allowed(client_ip(request), allowed):
        return _plain(403, "This address may not read the metrics (METRICS_ALLOWED_IPS).")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            refused = _plain(401, "The metrics need the bearer token (METRICS_TOKEN).")
            refused["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refused
    return None


def _allowed(address: str | None, networks: list[str]) -> bool:
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


@login_not_required
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    refused = metrics_refusal(request)
    if refused is not None:
        return refused
    return _no_store(HttpResponse(exposition.render(), content_type=exposition.CONTENT_TYPE))


def _plain(status: int, message: str) -> HttpResponse:
    return _no_store(
        HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    )


def _no_store(response: R) -> R:
    add_never_cache_headers(response)
    return response
