"""Retry tests use the shared fixtures of tests/conftest.py (mirrored, users)."""

from __future__ import annotations

import pytest

from sandbox import estate


@pytest.fixture
def small_estate(transactional_db) -> estate.EstateStats:
    """The first two companies of the suite's small estate, 12 syncs each.

    Every retry test is about one sync (or a handful): these two companies have
    three push errors with failed items and plenty of clean syncs, and each is
    mirrored by a real refresh before every test, so fewer companies make each
    test's setup about three times cheaper.
    """
    return estate.build_estate(companies=2, syncs_per_company=12, items_per_sync=8, days=20, seed=7)
