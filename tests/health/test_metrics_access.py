"""Who may read /metrics: a scraper with the token, from an allowed address; never a session.

With neither METRICS_TOKEN nor METRICS_ALLOWED_IPS set the metrics are off and
the endpoint answers 404, as the other pages that exist only once configured
(password reset, single sign-on) do. Every guard that is set must pass.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.support.metrics import TOKEN

URL = "/metrics"


def _get(client: Client, token: str | None = None, **extra: str):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(URL, headers=headers, **extra)


def test_with_neither_a_token_nor_an_address_list_the_metrics_are_off(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    response = _get(client, TOKEN)
    assert response.status_code == 404
    text = response.content.decode()
    assert "Metrics are off" in text and "METRICS_TOKEN" in text
    assert "synchealth_" not in text


@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"],
)
def test_a_missing_or_wrong_token_is_refused(client, db, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "synchealth_" not in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_the_token_lets_a_scraper_in_without_a_session(client, db):
    response = _get(client, TOKEN)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    assert "synchealth_upstream_requests_total" in response.content.decode()
    assert "sessionid" not in response.cookies


def test_a_signed_in_superuser_without_the_token_is_refused(client, db):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", password=None))
    assert _get(client).status_code == 401


def test_an_allowed_address_needs_no_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "127.0.0.1"]
    assert _get(client).status_code == 200  # the test client comes from 127.0.0.1
    response = _get(client, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 403
    assert "METRICS_ALLOWED_IPS" in response.content.decode()


def test_behind_a_trusted_proxy_the_scrapers_own_address_is_checked(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.1.2.0/24"]
    settings.TRUSTED_PROXIES = ["192.0.2.1"]
    via_proxy = {"REMOTE_ADDR": "192.0.2.1"}
    assert _get(client, HTTP_X_FORWARDED_FOR="10.1.2.3", **via_proxy).status_code == 200
    assert _get(client, HTTP_X_FORWARDED_FOR="203.0.113.9", **via_proxy).status_code == 403
    # The proxy itself is not the scraper, and a header from anyone else is not believed.
    assert _get(client, **via_proxy).status_code == 403
    assert (
        _get(client, HTTP_X_FORWARDED_FOR="10.1.2.3", REMOTE_ADDR="198.51.100.7").status_code == 403
    )


def test_with_both_set_both_must_pass(client, db, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert _get(client, TOKEN, REMOTE_ADDR="10.0.0.5").status_code == 200
    assert _get(client, REMOTE_ADDR="10.0.0.5").status_code == 401
    assert _get(client, TOKEN, REMOTE_ADDR="192.0.2.10").status_code == 403


def test_only_reading_is_allowed(client, db):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(URL, headers=headers).status_code == 405
    assert client.head(URL, headers=headers).status_code == 200
