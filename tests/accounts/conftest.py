"""Fixtures for signing in: a local OpenID provider and the settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard.roles import ensure_groups
from tests.support.oidc_provider import OpenIdProvider

CLIENT_ID = "sync-health-tests"
CLIENT_SECRET = "client-secret-for-tests"


@pytest.fixture
def provider() -> Iterator[OpenIdProvider]:
    with OpenIdProvider(CLIENT_ID, CLIENT_SECRET) as running:
        yield running


@pytest.fixture
def sso(settings, provider: OpenIdProvider, db) -> OpenIdProvider:
    """Single sign-on on, against `provider`, with the three roles mapped.

    The roles are made again: a test before this one may have flushed the
    database (and the groups its migrations made) away.
    """
    ensure_groups()
    endpoints = provider.endpoints
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Example ID"
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_ISSUER = provider.issuer
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = endpoints["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = endpoints["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = endpoints["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = endpoints["jwks_uri"]
    settings.OIDC_GROUP_ROLES = {
        "idp-support": "Support viewer",
        "idp-runners": "Support runner",
        "idp-leads": "Support lead",
    }
    return provider


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client
