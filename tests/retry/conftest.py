"""A mirrored estate with failed syncs, and users who may (or may not) retry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from dashboard import ingest
from dashboard import models as mirror


@pytest.fixture
def aimed(settings, sandbox_url, api_key):
    """The dashboard's client points at the live sandbox."""
    settings.CODAT_BASE_URL = sandbox_url
    settings.CODAT_API_KEY = api_key
    return settings


@pytest.fixture
def mirrored(aimed, small_estate, upstream):
    for company in ingest.refresh_companies(upstream):
        ingest.refresh_company(upstream, company)
    return upstream


@pytest.fixture
def failed_sync(mirrored) -> mirror.Sync:
    sync = (
        mirror.Sync.objects.filter(items_failed__gt=0)
        .exclude(status_code__in=(1000, 1010))
        .select_related("company")
        .order_by("-items_failed", "pk")
        .first()
    )
    assert sync is not None, "the estate has failed syncs"
    return sync


def _user(name: str, *groups: str) -> User:
    from dashboard.roles import ensure_groups

    known = ensure_groups()
    user = User.objects.create_user(name, password="pw")
    for group in groups:
        user.groups.add(known[group])
    return user


@pytest.fixture
def runner(transactional_db) -> User:
    return _user("runner", "Support runner")


@pytest.fixture
def viewer(transactional_db) -> User:
    return _user("viewer", "Support viewer")


@pytest.fixture
def lead(transactional_db) -> User:
    return _user("lead", "Support lead")
