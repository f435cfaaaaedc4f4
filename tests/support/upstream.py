"""An upstream client whose answers a test writes (`httpx.MockTransport`), with a roomy budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from dashboard.ratelimit import Limits, LocalLimiter
from dashboard.upstream import Upstream


def mock_client(
    handler: Callable[[httpx.Request], httpx.Response], *, max_wait: float = 5, **kwargs: Any
) -> Upstream:
    """A client of https://upstream.test that `handler` answers; backoff near zero."""
    limits = Limits(per_window=10_000, window=60, per_company=10, lease=60, max_wait=max_wait)
    return Upstream(
        base_url="https://upstream.test",
        api_key="key",
        limiter=kwargs.pop("limiter", LocalLimiter(limits)),
        transport=httpx.MockTransport(handler),
        backoff_base=0.001,
        **kwargs,
    )
