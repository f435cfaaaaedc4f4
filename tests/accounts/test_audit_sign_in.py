"""The access audit records every sign-in, failed sign-in, lockout and sign-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from dashboard.models import AccessEvent
from dashboard.vocabulary import AccessAction
from tests.support.oidc_provider import Person, sign_in
from tests.support.users import PASSWORD, make_user

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
BOB = Person(sub="00u-bob", preferred_username="bob", email="bob@example.com", groups=[])
PROXY = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}


@pytest.fixture
def viewer_user(db):
    return make_user("viewer", "Support viewer")


def attempt(client, password: str, *, username: str = "viewer", url: str = LOGIN, **meta):
    return client.post(url, {"username": username, "password": password}, **meta)


def events(action: AccessAction) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(action=action).order_by("at", "pk"))


def test_a_sign_in_is_recorded_with_who_how_and_from_where(client, viewer_user, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]

    assert attempt(client, PASSWORD, **PROXY).status_code == 302

    [event] = events(AccessAction.LOGIN)
    assert (event.user, event.username, event.client_ip) == (viewer_user, "viewer", "203.0.113.7")
    assert event.path == LOGIN
    assert event.detail == {"method": "password"}


def test_a_failed_sign_in_is_recorded_by_the_name_typed_and_never_the_password(client, db):
    attempt(client, "hunter2-wrong", username="nobody-by-that-name")
    attempt(client, "hunter2-admin", username="admin", url=ADMIN_LOGIN)

    failed = events(AccessAction.LOGIN_FAILED)
    assert [(e.username, e.user_id, e.path) for e in failed] == [
        ("nobody-by-that-name", None, LOGIN),
        ("admin", None, ADMIN_LOGIN),
    ]
    assert all(e.client_ip == "127.0.0.1" for e in failed)
    stored = [str(value) for row in AccessEvent.objects.values() for value in row.values()]
    assert not any("hunter2" in value for value in stored)


def test_a_failed_sign_in_from_a_signed_in_browser_is_not_put_on_its_user(client, viewer_user):
    client.force_login(viewer_user)

    attempt(client, "wrong password", username="lead")

    [event] = events(AccessAction.LOGIN_FAILED)
    assert (event.username, event.user_id) == ("lead", None)


def test_a_lockout_is_recorded_and_so_is_each_attempt_that_renews_it(client, viewer_user):
    for _ in range(5):
        attempt(client, "wrong password")
    attempt(client, PASSWORD)  # refused: still locked out, and the wait starts again

    lockouts = events(AccessAction.LOCKOUT)
    assert [e.detail["failures"] for e in lockouts] == [5, 6]
    assert {(e.username, e.client_ip, e.user_id) for e in lockouts} == {
        ("viewer", "127.0.0.1", None)
    }
    assert len(events(AccessAction.LOGIN_FAILED)) == 6
    assert not events(AccessAction.LOGIN)


def test_four_failures_are_not_a_lockout(client, viewer_user):
    for _ in range(4):
        attempt(client, "wrong password")

    assert len(events(AccessAction.LOGIN_FAILED)) == 4
    assert not events(AccessAction.LOCKOUT)


def test_a_sign_out_is_recorded(client, viewer_user):
    attempt(client, PASSWORD)

    client.post("/accounts/logout/")

    [event] = events(AccessAction.LOGOUT)
    assert (event.user, event.username, event.detail) == (
        viewer_user,
        "viewer",
        {"timed_out": False},
    )


def test_a_session_that_times_out_is_recorded_as_such(client, viewer_user):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        attempt(client, PASSWORD)
        clock.shift(timedelta(minutes=61))
        client.get("/")

    [event] = events(AccessAction.LOGOUT)
    assert (event.username, event.detail) == ("viewer", {"timed_out": True})


def test_a_deleted_account_keeps_its_trail_by_name(client, viewer_user):
    attempt(client, PASSWORD)

    viewer_user.delete()

    [event] = events(AccessAction.LOGIN)
    assert (event.user_id, event.username) == (None, "viewer")


def test_a_single_sign_on_sign_in_is_recorded_as_such(client, db, sso):
    response = sign_in(client, sso, BOB)

    assert response.status_code == 302
    [event] = events(AccessAction.LOGIN)
    assert (event.username, event.detail) == ("bob", {"method": "single sign-on"})
    assert event.path == "/accounts/sso/callback/"
