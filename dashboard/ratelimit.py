"""One request budget for the whole deployment.

Codat allows about 1,000 requests a minute per IP, 10 concurrent requests per
company, and a daily quota that shrinks as `X-Rate-Limit-Remaining` says. Every
upstream request takes a slot here first:

- a sliding-window budget of `CODAT_RATE_LIMIT_PER_MINUTE` requests per
  `CODAT_RATE_LIMIT_WINDOW_SECONDS`, shared by every process;
- at most `CODAT_MAX_IN_FLIGHT_PER_COMPANY` requests in flight per company,
  held as leases that expire, so a killed worker cannot leak a slot;
- when the daily quota runs low, requests are spread over the time left until
  it resets, and the last reserve is kept for retries from the UI.

With a Redis broker the state lives in Redis (atomic Lua scripts, Redis's own
clock); otherwise in this process, which is exact for the single worker
process of the embedded defaults and a per-process bound beyond that.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, cast

from django.conf import settings


class QuotaExhausted(Exception):
    """The daily quota is down to its reserve; nothing more until `resume_at`."""

    def __init__(self, resume_at: float) -> None:
        super().__init__(f"daily request quota exhausted until {resume_at:.0f}")
        self.resume_at = resume_at


class BudgetWaitTooLong(Exception):
    """The per-minute budget would make this caller wait longer than it may sleep."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"request budget busy for {wait:.1f}s")
        self.wait = wait


@dataclass(frozen=True)
class Limits:
    per_window: int
    window: float
    per_company: int
    lease: float
    max_wait: float
    reserve_share: float = 0.02
    pace_share: float = 0.10

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            per_window=settings.CODAT_RATE_LIMIT_PER_MINUTE,
            window=settings.CODAT_RATE_LIMIT_WINDOW_SECONDS,
            per_company=settings.CODAT_MAX_IN_FLIGHT_PER_COMPANY,
            lease=settings.CODAT_REQUEST_LEASE_SECONDS,
            max_wait=settings.CODAT_MAX_WAIT_SECONDS,
        )


def parse_reset(value: str) -> float | None:
    """`X-Rate-Limit-Reset`: an ISO or HTTP date, or seconds from now."""
    value = value.strip()
    if not value:
        return None
    try:
        return time.time() + float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class Limiter:
    """The interface; `get_limiter()` picks the implementation.

    `clock` (monotonic seconds) and `sleep` are the real ones unless a test
    passes a fake clock that moves when slept on.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep

    # -- per-minute budget --
    def _take(self) -> float:
        """Take one request from the window; 0 on success, else seconds to wait."""
        raise NotImplementedError

    def wait_for_budget(self) -> None:
        deadline = self.clock() + self.limits.max_wait
        while True:
            wait = self._take()
            if wait <= 0:
                return
            if self.clock() + wait > deadline:
                raise BudgetWaitTooLong(wait)
            self.sleep(min(wait, 1.0))

    # -- per-company concurrency --
    def _enter(self, company: str, token: str) -> bool:
        raise NotImplementedError

    def _leave(self, company: str, token: str) -> None:
        raise NotImplementedError

    @contextmanager
    def company_slot(self, company: str | None) -> Iterator[None]:
        if not company:
            yield
            return
        token = uuid.uuid4().hex
        deadline = self.clock() + self.limits.max_wait
        pause = 0.005
        while not self._enter(company, token):
            if self.clock() > deadline:
                raise BudgetWaitTooLong(self.limits.max_wait)
            self.sleep(pause)
            pause = min(pause * 2, 0.1)
        try:
            yield
        finally:
            self._leave(company, token)

    # -- daily quota --
    def note_quota(self, remaining: int, limit: int, reset_at: float | None) -> None:
        raise NotImplementedError

    def _quota(self) -> tuple[int, int, float] | None:
        raise NotImplementedError

    def quota_pause(self) -> float:
        """Seconds to wait before the next request to stay inside the daily quota."""
        quota = self._quota()
        if quota is None:
            return 0.0
        remaining, limit, reset_at = quota
        left = reset_at - time.time()
        if left <= 0 or limit <= 0:
            return 0.0
        if remaining <= limit * self.limits.reserve_share:
            raise QuotaExhausted(reset_at)
        if remaining <= limit * self.limits.pace_share:
            return left / max(remaining - limit * self.limits.reserve_share, 1)
        return 0.0

    def reset(self) -> None:
        raise NotImplementedError


class LocalLimiter(Limiter):
    def __init__(self, limits: Limits, **timing: Any) -> None:
        super().__init__(limits, **timing)
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()
        self._slots: dict[str, dict[str, float]] = {}
        self._quota_state: tuple[int, int, float] | None = None

    def _take(self) -> float:
        now = self.clock()
        with self._lock:
            while self._stamps and self._stamps[0] <= now - self.limits.window:
                self._stamps.popleft()
            if len(self._stamps) < self.limits.per_window:
                self._stamps.append(now)
                return 0.0
            return self._stamps[0] + self.limits.window - now

    def _enter(self, company: str, token: str) -> bool:
        now = self.clock()
        with self._lock:
            slots = self._slots.setdefault(company, {})
            for key in [k for k, expiry in slots.items() if expiry <= now]:
                del slots[key]
            if len(slots) >= self.limits.per_company:
                return False
            slots[token] = now + self.limits.lease
            return True

    def _leave(self, company: str, token: str) -> None:
        with self._lock:
            slots = self._slots.get(company, {})
            slots.pop(token, None)
            if not slots:
                self._slots.pop(company, None)

    def note_quota(self, remaining: int, limit: int, reset_at: float | None) -> None:
        if reset_at is not None:
            with self._lock:
                self._quota_state = (remaining, limit, reset_at)

    def _quota(self) -> tuple[int, int, float] | None:
        return self._quota_state

    def reset(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._slots.clear()
            self._quota_state = None


# KEYS[1] window zset; ARGV: window ms, limit, member. Redis's clock, not ours.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + tonumber(ARGV[1]) - now
"""

# KEYS[1] company's lease zset (score = expiry ms); ARGV: limit, lease ms, token.
_ENTER = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisLimiter(Limiter):
    def __init__(
        self, limits: Limits, url: str, prefix: str = "synchealth:rl", **timing: Any
    ) -> None:
        import redis

        super().__init__(limits, **timing)
        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self._take_script = self.redis.register_script(_TAKE)
        self._enter_script = self.redis.register_script(_ENTER)

    def _take(self) -> float:
        wait_ms = self._take_script(
            keys=[f"{self.prefix}:window"],
            args=[int(self.limits.window * 1000), self.limits.per_window, uuid.uuid4().hex],
        )
        return max(0.0, float(wait_ms) / 1000)

    def _enter(self, company: str, token: str) -> bool:
        return bool(
            self._enter_script(
                keys=[f"{self.prefix}:inflight:{company}"],
                args=[self.limits.per_company, int(self.limits.lease * 1000), token],
            )
        )

    def _leave(self, company: str, token: str) -> None:
        self.redis.zrem(f"{self.prefix}:inflight:{company}", token)

    def note_quota(self, remaining: int, limit: int, reset_at: float | None) -> None:
        if reset_at is None:
            return
        key = f"{self.prefix}:quota"
        self.redis.hset(key, mapping={"remaining": remaining, "limit": limit, "reset": reset_at})
        self.redis.expireat(key, int(reset_at) + 1)

    def _quota(self) -> tuple[int, int, float] | None:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(f"{self.prefix}:quota"))
        if not raw:
            return None
        return int(raw[b"remaining"]), int(raw[b"limit"]), float(raw[b"reset"])

    def reset(self) -> None:
        keys = list(self.redis.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.redis.delete(*keys)


@cache
def get_limiter() -> Limiter:
    limits = Limits.from_settings()
    if settings.REDIS_URL:
        return RedisLimiter(limits, settings.REDIS_URL, f"{settings.CODAT_RATE_LIMIT_PREFIX}")
    return LocalLimiter(limits)
