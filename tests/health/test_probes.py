"""/healthz and /readyz: what a load balancer or a monitor is told, and what it is not.

Readiness fails on what taking the server out of rotation can help with (its
database, broker, cache, migrations) and names it; the upstream and the
mirror's freshness are reported beside, and never fail it. Failures are
real ones where they can be (a closed port, a missing folder, a migration
row taken away); only the database's is simulated, at its driver's door.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.db import OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.utils import timezone

from dashboard.models import RefreshState
from synchealth.settings import filesystem_broker_options
from tests.support.factories import make_company
from tests.support.metrics import TOKEN

CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def _readyz(client):
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    return response, response.json()


# --- /healthz ---


def test_healthz_answers_anyone_without_a_session_or_any_query(
    client, db, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_healthz_answers_even_when_the_database_is_down(client, db):
    with mock.patch.object(connection, "cursor", side_effect=OperationalError("down")):
        assert client.get("/healthz").status_code == 200


def test_probes_and_scrapes_are_answered_over_plain_http_when_https_is_enforced(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # its middleware is loaded with the setting above
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # the rest still goes to HTTPS


# --- /readyz: ready ---


def test_readyz_is_ready_when_database_broker_cache_and_migrations_are_fine(client, db, settings):
    response, body = _readyz(client)
    assert response.status_code == 200
    assert body["status"] == "ready" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "cache", "migrations"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["migrations"]["detail"] == "all applied"
    assert body["upstream"] == {
        "checked": False,
        "detail": "Not checked (HEALTH_UPSTREAM_CHECK_SECONDS is 0).",
    }


def test_the_file_broker_is_ready_when_its_folders_are_writable(client, db, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    options = filesystem_broker_options(tmp_path / "broker")
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        Path(str(options[key])).mkdir(parents=True, exist_ok=True)
    response, body = _readyz(client)
    assert response.status_code == 200
    assert body["checks"]["broker"]["detail"] == "the queue's folders are writable"


# --- /readyz: not ready, and which check says so ---


def test_a_database_that_does_not_answer_makes_it_not_ready(client, db, settings):
    secret = 'password authentication failed for user "synchealth" at db.internal'
    with mock.patch.object(connection, "cursor", side_effect=OperationalError(secret)):
        response, body = _readyz(client)
    assert response.status_code == 503
    assert body["status"] == "not ready"
    assert "database" in body["failing"]
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "OperationalError (the web server's log has the details)",
        "seconds": body["checks"]["database"]["seconds"],
    }
    assert body["checks"]["broker"]["ok"] and body["checks"]["cache"]["ok"]
    assert "db.internal" not in response.content.decode()


def test_a_broker_that_does_not_answer_makes_it_not_ready(client, db, settings):
    settings.CELERY_BROKER_URL = f"redis://:hunter2@{CLOSED}/0"
    response, body = _readyz(client)
    assert response.status_code == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["detail"].startswith("ConnectionError")
    assert "hunter2" not in response.content.decode() and CLOSED not in response.content.decode()


def test_a_file_broker_without_its_folders_makes_it_not_ready(client, db, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(tmp_path / "gone")
    response, body = _readyz(client)
    assert response.status_code == 503
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["detail"] == (
        "The broker's queue folder is missing or not writable."
    )
    assert str(tmp_path) not in response.content.decode()


def test_a_cache_that_does_not_answer_makes_it_not_ready(client, db, settings):
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://{CLOSED}/0",
        }
    }
    response, body = _readyz(client)
    assert response.status_code == 503
    assert body["failing"] == ["cache"]
    assert body["checks"]["cache"]["detail"].startswith("ConnectionError")
    # The upstream's last answer lives in the cache too: reported as unknown, not a failure.
    assert set(body["upstream"]) == {"error"}


def test_a_migration_not_applied_makes_it_not_ready_and_is_named(client, db):
    newest = MigrationRecorder.Migration.objects.filter(app="dashboard").order_by("-name").first()
    assert newest is not None
    newest.delete()  # as if the code were deployed and `migrate` not yet run
    response, body = _readyz(client)
    assert response.status_code == 503
    assert body["failing"] == ["migrations"]
    detail = body["checks"]["migrations"]["detail"]
    assert f"dashboard.{newest.name}" in detail and "manage.py migrate" in detail


# --- /readyz: the upstream and the mirror, reported, never failing it ---


def test_an_upstream_that_does_not_answer_is_reported_without_failing_readiness(
    client, db, settings
):
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 60
    settings.CODAT_BASE_URL = f"http://{CLOSED}"
    settings.CODAT_API_KEY = "a-key-nobody-may-see"
    response, body = _readyz(client)
    assert response.status_code == 200
    upstream = body["upstream"]
    assert upstream["checked"] is True and upstream["reachable"] is False
    assert upstream["detail"] == "Could not connect to the upstream."
    text = response.content.decode()
    assert "a-key-nobody-may-see" not in text and CLOSED not in text


def test_the_upstream_is_asked_at_most_once_a_minute(client, db, settings):
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 60
    settings.CODAT_BASE_URL = f"http://{CLOSED}"
    from dashboard.metrics import recorder

    first = client.get("/readyz").json()["upstream"]
    second = client.get("/readyz").json()["upstream"]
    assert first == second  # the same answer, kept
    asked = [
        amount
        for (name, labels), amount in recorder.pending().items()
        if name == "synchealth_upstream_requests_total" and "health_check" in labels
    ]
    assert asked == [1]


def test_the_upstream_check_takes_no_request_when_the_budget_is_in_use(client, db, settings):
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 60
    from dashboard.ratelimit import get_limiter

    settings.CODAT_RATE_LIMIT_PER_MINUTE = 1
    get_limiter.cache_clear()
    get_limiter().wait_for_budget()  # a worker took the minute's only request
    upstream = client.get("/readyz").json()["upstream"]
    assert upstream["reachable"] is None
    assert upstream["detail"] == "Not asked: the request budget is in use; the next check will ask."


def test_a_reachable_upstream_and_a_refused_key_are_told_apart(
    client, aimed, sandbox_url, settings
):
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 60
    response, body = _readyz(client)
    assert response.status_code == 200
    assert body["upstream"]["reachable"] is True
    assert body["upstream"]["detail"] == "The upstream answered."

    from django.core.cache import cache

    cache.clear()
    settings.CODAT_API_KEY = "not-the-sandbox-key"
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["upstream"]["reachable"] is True and body["upstream"]["status"] == 401
    assert "CODAT_API_KEY" in body["upstream"]["detail"]


def test_the_mirror_s_freshness_is_reported_without_failing_readiness(client, db, settings):
    now = timezone.now()
    stale, fresh = make_company(), make_company()
    RefreshState.objects.create(company=stale, last_success=now - timedelta(days=3))
    RefreshState.objects.create(company=fresh, last_success=now - timedelta(minutes=2))
    make_company()  # never refreshed
    response, body = _readyz(client)
    assert response.status_code == 200
    mirror = body["mirror"]
    assert 3 * 86400 <= mirror["oldest_refresh_age_seconds"] < 3 * 86400 + 60
    assert 120 <= mirror["newest_refresh_age_seconds"] < 180
    assert mirror["oldest_refresh"].startswith((now - timedelta(days=3)).date().isoformat())
    json.dumps(body)  # plain JSON all the way down
