"""Single sign-on through a real (local) OpenID provider, over HTTP, end to end."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth.models import User

from accounts.models import SingleSignOnIdentity
from tests.support.oidc_provider import Person, sign_in
from tests.support.users import PASSWORD, make_user

ALICE = Person(
    sub="00u-alice",
    preferred_username="alice",
    email="alice@example.com",
    groups=["idp-support", "everyone"],
    given_name="Alice",
    family_name="Smith",
)


def roles(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_the_first_sign_in_creates_the_user_with_the_mapped_roles(client, db, sso):
    response = sign_in(client, sso, ALICE, next_url="/syncs/")

    assert response.status_code == 302 and response["Location"] == "/syncs/"
    user = User.objects.get(sso_identity__subject="00u-alice")
    assert (user.username, user.email, user.first_name) == ("alice", "alice@example.com", "Alice")
    assert not user.has_usable_password()
    assert roles(user) == {"Support viewer"}
    assert SingleSignOnIdentity.objects.get(user=user).groups == ["idp-support", "everyone"]
    assert client.get("/syncs/").status_code == 200


def test_the_sign_in_flow_uses_pkce_and_a_nonce(client, db, sso):
    start = client.get("/accounts/sso/start/")
    query = parse_qs(urlsplit(start["Location"]).query)

    assert query["client_id"] == ["sync-health-tests"]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == ["http://testserver/accounts/sso/callback/"]


def test_a_later_sign_in_with_other_groups_changes_the_roles(client, db, sso):
    sign_in(client, sso, ALICE)
    user = User.objects.get(username="alice")
    assert roles(user) == {"Support viewer"}
    client.post("/accounts/logout/")

    promoted = Person(**{**ALICE.__dict__, "groups": ["idp-runners", "idp-leads"]})
    sign_in(client, sso, promoted)

    assert User.objects.filter(sso_identity__subject="00u-alice").count() == 1
    assert roles(user) == {"Support runner", "Support lead"}


def test_groups_that_map_to_nothing_leave_the_user_without_a_role(client, db, sso):
    sign_in(client, sso, ALICE)
    user = User.objects.get(username="alice")
    client.post("/accounts/logout/")

    sign_in(client, sso, Person(**{**ALICE.__dict__, "groups": ["everyone", "finance"]}))

    assert roles(user) == set()
    assert "_auth_user_id" in client.session  # signed in, with no role


def test_groups_that_are_not_support_roles_are_left_alone(client, db, sso):
    sign_in(client, sso, ALICE)
    user = User.objects.get(username="alice")
    auditors = user.groups.model.objects.create(name="Auditors")
    user.groups.add(auditors)
    client.post("/accounts/logout/")

    sign_in(client, sso, Person(**{**ALICE.__dict__, "groups": []}))

    assert roles(user) == {"Auditors"}


def test_a_local_account_with_the_same_address_or_name_is_never_taken_over(client, db, sso):
    admin = User.objects.create_superuser("alice", "alice@example.com", PASSWORD)

    sign_in(client, sso, ALICE)

    signed_in = User.objects.get(pk=client.session["_auth_user_id"])
    assert signed_in != admin
    assert signed_in.username == "alice-2"
    assert not signed_in.is_staff


def test_an_id_token_from_another_issuer_is_refused(client, db, sso):
    sso.id_token_overrides = {"iss": "https://impostor.example.com"}

    response = sign_in(client, sso, ALICE)

    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="alice").exists()
    page = client.get("/accounts/login/")
    assert "Single sign-on did not complete" in page.content.decode()


def test_an_id_token_made_for_another_client_is_refused(client, db, sso):
    sso.id_token_overrides = {"aud": "some-other-app"}

    sign_in(client, sso, ALICE)

    assert "_auth_user_id" not in client.session


def test_a_refusal_at_the_provider_lands_on_the_login_page_explained(client, db, sso):
    sso.person = None  # the provider answers access_denied
    start = client.get("/accounts/sso/start/")
    back = urlsplit(httpx.get(start["Location"], trust_env=False).headers["location"])

    response = client.get(f"{back.path}?{back.query}", follow=True)

    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "Single sign-on did not complete" in response.content.decode()


def test_a_deactivated_user_cannot_sign_in_and_loses_their_session(client, db, sso):
    sign_in(client, sso, ALICE)
    User.objects.filter(username="alice").update(is_active=False)

    assert client.get("/")["Location"] == "/accounts/login/?next=/"  # the session no longer holds
    response = sign_in(client, sso, ALICE)

    assert response["Location"] == "/accounts/login/"
    assert client.get("/")["Location"] == "/accounts/login/?next=/"


def test_a_password_login_carrying_a_code_does_not_exchange_it(client, db, sso):
    make_user("viewer", "Support viewer")

    client.post("/accounts/login/?code=stolen&state=anything", {"username": "x", "password": "y"})

    assert sso.token_requests == 0


def test_with_single_sign_on_on_only_admins_keep_their_passwords(client, db, sso):
    make_user("viewer", "Support viewer")
    User.objects.create_user("staffer", password=PASSWORD, is_staff=True)

    refused = client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    admitted = client.post("/accounts/login/", {"username": "staffer", "password": PASSWORD})
    assert admitted.status_code == 302 and "_auth_user_id" in client.session


def test_the_login_page_offers_the_provider(client, db, sso):
    page = client.get("/accounts/login/?next=/syncs/").content.decode()

    assert 'href="/accounts/sso/start/?next=/syncs/"' in page
    assert "Sign in with Example ID" in page


@pytest.mark.parametrize("path", ["/accounts/sso/start/", "/accounts/sso/callback/"])
def test_without_settings_the_sso_urls_do_not_exist(client, db, path):
    assert client.get(path).status_code == 404


def test_without_settings_the_login_page_has_no_sso_button(client, db):
    page = client.get("/accounts/login/").content.decode()

    assert "Sign in with" not in page and "/accounts/sso/" not in page


def test_without_settings_local_users_keep_their_passwords(client, db):
    make_user("viewer", "Support viewer")

    response = client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD})

    assert response.status_code == 302 and "_auth_user_id" in client.session


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": -120},  # expired, beyond the allowed clock skew
        {"iat": 600, "nbf": 600},  # not yet valid
        {"exp": None},
    ],
    ids=["expired", "not-yet-valid", "no-expiry"],
)
def test_an_id_token_out_of_its_time_is_refused_not_an_error(client, db, sso, claims):
    # Seconds from now, counted when the test runs, not when it was collected
    # (a slow run could otherwise reach a "not yet valid" moment first).
    now = int(time.time())
    sso.id_token_overrides = {k: now + v for k, v in claims.items() if v is not None}
    if claims.get("exp", 0) is None:
        sso.id_token_drop = {"exp"}

    response = sign_in(client, sso, ALICE)

    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert "Single sign-on did not complete" in client.get("/accounts/login/").content.decode()


def test_a_provider_clock_a_little_ahead_is_tolerated(client, db, sso):
    sso.id_token_overrides = {"iat": int(time.time()) + 20}

    sign_in(client, sso, ALICE)

    assert "_auth_user_id" in client.session
