"""Sessions end after an hour without activity (polling is not activity) and 12 hours in."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.support.factories import make_company, make_sync
from tests.support.users import PASSWORD

POLL_HEADERS = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def running_sync(db):
    """A sync still running: its page polls every few seconds while it is open."""
    return make_sync(make_company(), code=1000, ago=timedelta(minutes=2))


@pytest.fixture
def clock():
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


@pytest.fixture
def signed_in_client(client, viewer, clock):
    response = client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})
    assert response.status_code == 302
    return client


def page_url(sync) -> str:
    return f"/syncs/{sync.sync_id}/"


def poll(client, sync):
    here = f"http://testserver{page_url(sync)}"
    return client.get(f"{page_url(sync)}?poll=1", HTTP_HX_CURRENT_URL=here, **POLL_HEADERS)


def test_the_sync_page_polls_with_the_marker_the_timeout_knows(signed_in_client, running_sync):
    page = signed_in_client.get(page_url(running_sync)).content.decode()

    assert f'hx-get="{page_url(running_sync)}?poll=1" hx-trigger="every 5s' in page


def test_polling_longer_than_the_idle_timeout_still_ends_the_session(
    signed_in_client, running_sync, clock
):
    signed_in_client.get(page_url(running_sync))
    for _ in range(11):  # 55 minutes of polling, every 5 minutes
        clock.shift(timedelta(minutes=5))
        assert poll(signed_in_client, running_sync).status_code == 200

    clock.shift(timedelta(minutes=5))
    ended = poll(signed_in_client, running_sync)

    # htmx takes the whole page to the login, back to where the person was.
    assert ended["HX-Redirect"] == f"/accounts/login/?next=%2Fsyncs%2F{running_sync.sync_id}%2F"
    assert "_auth_user_id" not in signed_in_client.session
    login = signed_in_client.get(ended["HX-Redirect"])
    assert "You were signed out after 60 minutes without activity." in login.content.decode()


def test_page_views_keep_the_session_alive(signed_in_client, running_sync, clock):
    for _ in range(10):  # five hours of work, a page every half hour
        clock.shift(timedelta(minutes=30))
        assert signed_in_client.get(page_url(running_sync)).status_code == 200


def test_a_plain_page_view_after_the_idle_timeout_goes_to_login_with_the_reason(
    signed_in_client, running_sync, clock
):
    clock.shift(timedelta(minutes=61))

    response = signed_in_client.get(page_url(running_sync), follow=True)

    assert response.redirect_chain == [
        (f"/accounts/login/?next=/syncs/{running_sync.sync_id}/", 302)
    ]
    assert "You were signed out after 60 minutes without activity." in response.content.decode()


def test_the_absolute_lifetime_ends_the_session_however_active(
    signed_in_client, running_sync, clock
):
    for _ in range(23):  # eleven and a half hours, a page every half hour
        clock.shift(timedelta(minutes=30))
        assert signed_in_client.get(page_url(running_sync)).status_code == 200

    clock.shift(timedelta(minutes=30))
    response = signed_in_client.get(page_url(running_sync), follow=True)

    assert response.redirect_chain[0][0].startswith("/accounts/login/")
    assert "You were signed out 12 hours after signing in." in response.content.decode()


def test_the_timeouts_come_from_the_settings(settings, signed_in_client, running_sync, clock):
    settings.SESSION_IDLE_TIMEOUT_MINUTES = 5
    clock.shift(timedelta(minutes=4))
    assert signed_in_client.get(page_url(running_sync)).status_code == 200

    clock.shift(timedelta(minutes=5))
    response = signed_in_client.get(page_url(running_sync), follow=True)

    assert "You were signed out after 5 minutes without activity." in response.content.decode()


def test_signing_in_again_starts_both_clocks_again(signed_in_client, viewer, running_sync, clock):
    clock.shift(timedelta(minutes=61))
    signed_in_client.get(page_url(running_sync))
    signed_in_client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})

    clock.shift(timedelta(minutes=59))

    assert signed_in_client.get(page_url(running_sync)).status_code == 200
