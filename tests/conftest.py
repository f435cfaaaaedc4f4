"""Fixtures shared by the whole suite."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings as django_settings

from dashboard.ratelimit import Limits, LocalLimiter
from dashboard.upstream import Upstream
from sandbox import estate
from sandbox.models import SandboxSettings
from tests.support import sqlite_template
from tests.support.users import make_user


def pytest_configure(config: pytest.Config) -> None:
    # Django's default hasher costs about a quarter of a second per user on
    # purpose; tests log in, they do not guard passwords.
    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # On SQLite, start from the last run's migrated database while the
    # migrations are the same (see tests/support/sqlite_template.py).
    sqlite_template.install()
    # Celery's app reads its settings once, at first use: read them now, so a test
    # that changes the broker setting for itself (the guards, the probes) is not the
    # one whose broker every later test in this process publishes to.
    from synchealth.celery import app

    app.conf.broker_url  # noqa: B018


@pytest.fixture
def sandbox_enabled(settings):
    settings.SANDBOX_ENABLED = True
    SandboxSettings._cached = None
    yield settings
    SandboxSettings._cached = None


@pytest.fixture
def sandbox_url(live_server, sandbox_enabled) -> str:
    return f"{live_server.url}/sandbox"


@pytest.fixture
def api_key() -> str:
    return django_settings.SANDBOX_API_KEY


@pytest.fixture
def auth_header(api_key: str) -> str:
    """The header value as Codat's portal hands it out: Basic base64(key)."""
    return "Basic " + base64.b64encode(api_key.encode()).decode()


@pytest.fixture
def api(sandbox_url: str, auth_header: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox_url, headers={"Authorization": auth_header}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def sandbox_config(db) -> SandboxSettings:
    """The sandbox's settings row; save() after changing it."""
    SandboxSettings._cached = None
    return SandboxSettings.load()


@pytest.fixture
def small_estate(transactional_db) -> estate.EstateStats:
    """A deterministic estate: 6 companies x 12 syncs, about 8 items per sync."""
    return estate.build_estate(companies=6, syncs_per_company=12, items_per_sync=8, days=20, seed=7)


@pytest.fixture
def sdk(sandbox_url: str, auth_header: str):
    from codat_sync_for_expenses import CodatSyncExpenses
    from codat_sync_for_expenses.models import shared

    return CodatSyncExpenses(
        security=shared.Security(auth_header=auth_header), server_url=sandbox_url
    )


@pytest.fixture
def celery_eager():
    """Run tasks inline (when enqueued) instead of sending them to the broker."""
    from synchealth.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fresh_rate_limiter():
    """Each test starts with empty budgets: ours, and the sandbox's counters (in the cache)."""
    from django.core.cache import cache

    from dashboard.ratelimit import get_limiter

    cache.clear()
    get_limiter.cache_clear()
    yield
    get_limiter().reset()
    get_limiter.cache_clear()


@pytest.fixture
def limiter() -> LocalLimiter:
    return LocalLimiter(
        Limits(per_window=100_000, window=60, per_company=10, lease=60, max_wait=30)
    )


@pytest.fixture
def upstream(sandbox_url: str, api_key: str, limiter: LocalLimiter) -> Iterator[Upstream]:
    client = Upstream(
        base_url=sandbox_url, api_key=api_key, limiter=limiter, max_attempts=12, backoff_base=0.01
    )
    yield client
    client.close()


# --- a mirrored estate (retry, browser tests) and the cast of users ---


@pytest.fixture
def aimed(settings, sandbox_url, api_key):
    """The dashboard's own client (tasks, views) points at the live sandbox."""
    settings.CODAT_BASE_URL = sandbox_url
    settings.CODAT_API_KEY = api_key
    return settings


@pytest.fixture
def in_process_upstream(sandbox_enabled, api_key, limiter) -> Iterator[Upstream]:
    """The upstream client speaking HTTP to the sandbox in this process, without a socket.

    For setting up data (about twice as fast as over the live server);
    `upstream` is the one for tests of what goes over the wire.
    """
    from django.core.handlers.wsgi import WSGIHandler

    client = Upstream(
        base_url="http://testserver/sandbox",
        api_key=api_key,
        limiter=limiter,
        transport=httpx.WSGITransport(app=WSGIHandler()),
    )
    yield client
    client.close()


@pytest.fixture
def mirrored(aimed, small_estate, upstream, in_process_upstream):
    """The small estate, mirrored through a real refresh (in process); returns `upstream`."""
    from dashboard import ingest

    for company in ingest.refresh_companies(in_process_upstream):
        ingest.refresh_company(in_process_upstream, company)
    return upstream


@pytest.fixture
def failed_sync(mirrored):
    from dashboard.models import Sync

    sync = (
        Sync.objects.filter(items_failed__gt=0)
        .exclude(status_code__in=(1000, 1010))
        .select_related("company")
        .order_by("-items_failed", "pk")
        .first()
    )
    assert sync is not None, "the estate has failed syncs"
    return sync


@pytest.fixture
def runner(db):
    """May retry a sync's failed items."""
    return make_user("runner", "Support runner")


@pytest.fixture
def viewer(db):
    """May read every page, may not retry."""
    return make_user("viewer", "Support viewer")


@pytest.fixture
def lead(db):
    """May retry many syncs at once."""
    return make_user("lead", "Support lead")


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(django_db_setup, django_db_blocker):
    """Before the test database is dropped, end connections that threads left open."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
