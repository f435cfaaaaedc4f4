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
