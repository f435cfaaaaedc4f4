"""Password reset exists only with e-mail; new passwords meet Django's full set of rules."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.support.users import PASSWORD

RESET_URLS = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
]


@pytest.fixture
def with_mail(settings):
    settings.EMAIL_HOST = "smtp.example.com"
    settings.PASSWORD_RESET_ENABLED = True
    return settings


@pytest.mark.parametrize("url", RESET_URLS)
def test_without_e_mail_the_reset_pages_do_not_exist(client, db, url):
    assert client.get(url).status_code == 404


def test_without_e_mail_the_login_page_offers_no_reset(client, db):
    page = client.get("/accounts/login/").content.decode()

    assert "password_reset" not in page and "Forgotten your password" not in page


def test_with_e_mail_the_login_page_offers_a_reset(client, db, with_mail):
    page = client.get("/accounts/login/").content.decode()

    assert '<a href="/accounts/password_reset/">Forgotten your password?</a>' in page


def test_with_e_mail_a_reset_sends_a_link_that_sets_a_new_password(
    client, viewer, with_mail, mailoutbox
):
    viewer.email = "viewer@example.com"
    viewer.save()

    sent = client.post("/accounts/password_reset/", {"email": "viewer@example.com"})
    assert sent["Location"] == "/accounts/password_reset/done/"
    assert client.get(sent["Location"]).status_code == 200
    assert len(mailoutbox) == 1 and mailoutbox[0].subject == "Reset your Sync Health password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mailoutbox[0].body)
    assert link is not None

    form = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form.content.decode()
    new_password = "a long and new passphrase"
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done["Location"] == "/accounts/reset/done/"
    viewer.refresh_from_db()
    assert viewer.check_password(new_password)


def change_password(client, new_password: str):
    return client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
    )


@pytest.mark.parametrize(
    ("new_password", "message"),
    [
        ("48151623429031", "This password is entirely numeric."),
        ("Xk3!pQ9z", "This password is too short. It must contain at least 12 characters."),
        ("password1234", "This password is too common."),
    ],
)
def test_a_weak_new_password_is_refused_with_the_reason(viewer_client, new_password, message):
    response = change_password(viewer_client, new_password)

    assert response.status_code == 200
    assert message in response.content.decode()


def test_a_strong_new_password_is_accepted(viewer_client, viewer):
    response = change_password(viewer_client, "correct horse battery staple")

    assert response["Location"] == "/accounts/password_change/done/"
    viewer.refresh_from_db()
    assert viewer.check_password("correct horse battery staple")


def test_a_user_without_a_password_is_not_offered_a_password_change(client, db):
    user = User.objects.create_user("sso-person")
    user.set_unusable_password()
    user.save()
    client.force_login(user)

    assert "/accounts/password_change/" not in client.get("/preferences/").content.decode()
