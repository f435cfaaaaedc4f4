"""Login protection: failed sign-ins lock a username out from one client address."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from tests.support.users import PASSWORD, make_user

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def attempt(client, password: str, *, url: str = LOGIN, username: str = "viewer", **meta):
    return client.post(url, {"username": username, "password": password, "next": "/"}, **meta)


def fail(client, times: int, **kwargs) -> None:
    for _ in range(times):
        attempt(client, "wrong password", **kwargs)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def viewer_user(db) -> User:
    return make_user("viewer", "Support viewer")


def test_the_right_password_is_refused_after_five_wrong_ones(client, viewer_user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail(client, 4)
    assert attempt(client, "wrong password").status_code == 429  # the fifth locks

    response = attempt(client, PASSWORD)

    assert response.status_code == 429
    assert not signed_in(client)
    page = response.content.decode()
    assert "Too many failed sign-ins. Try again in 15 minutes" in page
    assert "ask an administrator to unlock you" in page
    assert '<header class="topbar">' in page  # the app's own layout


def test_four_wrong_passwords_do_not_lock(client, viewer_user):
    fail(client, 4)

    assert attempt(client, PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_successful_sign_in_starts_the_count_again(client, viewer_user):
    fail(client, 4)
    attempt(client, PASSWORD)
    client.post("/accounts/logout/")

    fail(client, 4)

    assert attempt(client, PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client, viewer_user):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fail(client, 5)
        clock.shift(timedelta(minutes=15, seconds=1))
        response = attempt(client, PASSWORD)

    assert response.status_code == 302 and signed_in(client)


def test_an_attempt_during_the_lockout_starts_the_wait_again(client, viewer_user):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        fail(client, 5)
        clock.shift(timedelta(minutes=14))
        assert attempt(client, PASSWORD).status_code == 429
        clock.shift(timedelta(minutes=14))  # 28 minutes after the lockout began
        assert attempt(client, PASSWORD).status_code == 429

        clock.shift(timedelta(minutes=15, seconds=1))
        response = attempt(client, PASSWORD)

    assert response.status_code == 302 and signed_in(client)


def test_an_admin_unlocks_a_user_in_the_admin(client, viewer_user):
    fail(client, 5)
    attempts = AccessAttempt.objects.filter(username="viewer")
    assert attempts.count() == 1
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    other = client_for(admin)

    listing = other.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "viewer" in listing.content.decode()
    other.post(f"/admin/axes/accessattempt/{attempts.get().pk}/delete/", {"post": "yes"})

    assert attempt(client, PASSWORD).status_code == 302 and signed_in(client)


def test_an_admin_unlocks_a_user_from_the_command_line(client, viewer_user):
    fail(client, 5)

    call_command("axes_reset_username", "viewer")

    assert attempt(client, PASSWORD).status_code == 302 and signed_in(client)


def test_the_same_username_from_another_address_is_not_locked_out(client, viewer_user):
    fail(client, 5, REMOTE_ADDR="203.0.113.66")

    assert attempt(client, PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302


def test_the_admin_login_is_locked_the_same_way(client, db):
    User.objects.create_user("staffer", password=PASSWORD, is_staff=True, is_superuser=True)
    for _ in range(4):
        assert attempt(client, "nope", url=ADMIN_LOGIN, username="staffer").status_code == 200

    locked = attempt(client, "nope", url=ADMIN_LOGIN, username="staffer")
    response = attempt(client, PASSWORD, url=ADMIN_LOGIN, username="staffer")

    assert locked.status_code == response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)


def test_failures_on_either_login_count_together(client, db):
    User.objects.create_user("staffer", password=PASSWORD, is_staff=True)
    fail(client, 3, username="staffer")
    fail(client, 2, username="staffer", url=ADMIN_LOGIN)

    assert attempt(client, PASSWORD, username="staffer").status_code == 429


def test_a_lockout_is_logged_with_username_and_address(client, viewer_user, caplog):
    fail(client, 5, REMOTE_ADDR="203.0.113.66")

    lockouts = [r.getMessage() for r in caplog.records if "Locking out" in r.getMessage()]
    assert lockouts and 'username: "viewer"' in lockouts[0]
    assert 'ip_address: "203.0.113.66"' in lockouts[0]
    assert "wrong password" not in caplog.text


def client_for(user: User):
    from django.test import Client

    other = Client()
    other.force_login(user)
    return other


class TestBehindTrustedProxies:
    """The documented reverse proxy: X-Forwarded-For is believed from it, and only from it."""

    PROXY = "10.0.0.5"

    @pytest.fixture(autouse=True)
    def _proxy(self, settings):
        settings.TRUSTED_PROXIES = ["10.0.0.0/24"]

    def via_proxy(self, client_address: str) -> dict[str, str]:
        return {"REMOTE_ADDR": self.PROXY, "HTTP_X_FORWARDED_FOR": client_address}

    def test_one_client_locked_out_does_not_lock_out_another(self, client, viewer_user):
        fail(client, 5, **self.via_proxy("203.0.113.10"))

        assert attempt(client, PASSWORD, **self.via_proxy("203.0.113.10")).status_code == 429
        assert attempt(client, PASSWORD, **self.via_proxy("198.51.100.20")).status_code == 302

    def test_a_forged_header_from_an_untrusted_address_is_ignored(self, client, viewer_user):
        for n in range(5):  # a new "client" every time, all from one machine
            attempt(client, "wrong", REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}")

        forged = attempt(
            client, PASSWORD, REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR="1.1.1.99"
        )

        assert forged.status_code == 429
        assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.66"}

    def test_a_forged_prefix_passed_on_by_the_proxy_is_ignored(self, client, viewer_user):
        for n in range(5):
            attempt(client, "wrong", **self.via_proxy(f"1.1.1.{n}, 203.0.113.10"))

        assert attempt(client, PASSWORD, **self.via_proxy("203.0.113.10")).status_code == 429

    def test_a_forged_header_cannot_lock_out_someone_else(self, client, viewer_user):
        for _ in range(5):  # the attacker claims to be 198.51.100.20
            attempt(
                client, "wrong", REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR="198.51.100.20"
            )

        assert attempt(client, PASSWORD, **self.via_proxy("198.51.100.20")).status_code == 302


def test_a_lockout_on_the_sso_callback_links_back_to_the_login_page(rf, db):
    from django.contrib.auth.models import AnonymousUser

    from accounts.lockout import locked_out

    request = rf.get("/accounts/sso/callback/?code=abc&state=def")
    request.user = AnonymousUser()

    page = locked_out(request).content.decode()

    assert '<a href="/accounts/login/">Back to the login page</a>' in page
