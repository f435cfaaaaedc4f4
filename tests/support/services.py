"""Services a test may need (Redis, Chromium): skipped locally when missing, required in CI."""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("SYNCHEALTH_REQUIRE_SERVICES") == "1"


def require(condition: bool, what: str) -> None:
    """Skip locally when `what` is missing; in CI (SYNCHEALTH_REQUIRE_SERVICES=1) fail."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available on this machine")


def only_on_postgresql(why: str) -> pytest.MarkDecorator:
    """Skip on SQLite, saying `why` the test is PostgreSQL's; CI's PostgreSQL half runs it."""
    from django.db import connection

    return pytest.mark.skipif(
        connection.vendor != "postgresql", reason=f"{why}; this run is on SQLite"
    )
