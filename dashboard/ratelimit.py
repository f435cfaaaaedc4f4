"""One request budget for the whole deployment.

Codat allows about 1,000 requests a minute per IP, 10 concurrent requests per
company, and a daily quota that shrinks as `X-Rate-Limit-Remaining` says. Every
upstream request takes a slot here first:

- a sliding-window budget of `CODAT_RATE_LIMIT_PER_MINUTE` requests per
  `CODAT_RATE_LIMIT_WINDOW_SECONDS`, shared by every process;
- at most `CODAT_MAX_IN_FLIGHT_PER_COMPANY` requests in flight per company,
  held as leases that expire, so a killed worker cannot leak a slot;
- when the daily quota runs low, requests are spread over the time left until
  it resets, and the last reserve is kept for retries from the UI;
- a caller may also name a *lane* with a limit of its own in the same window
  (adaptive polling takes its share this way, `dashboard.polling`): a request
  of the lane takes a slot in both, or waits.

With a Redis broker the state lives in Redis (atomic Lua scripts, Redis's own
clock); otherwise in this process, which is exact for the single worker
process of the embedded defaults and a per-process bound beyond that.

`/metrics` shows the budget as it stands (`snapshot`) and the seconds spent
waiting for it (`synchealth_upstream_wait_seconds_total`).
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
from functools import cache, partial
from typing import Any, cast

from django.conf import settings

from . import metrics


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


@dataclass(frozen=True)
class Lane:
    """A share of the window kept for one kind of work: at most `limit` of its requests."""

    name: str
    limit: int


@dataclass(frozen=True)
class Budget:
    """The budget as it stands, for `/metrics`."""

    used: int  # requests taken in the current window
    most_in_flight: int  # the most any one company has in flight
    quota: tuple[int, int] | None  # the upstream's (remaining, limit), while known


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
    def _take(self, lane: Lane | None = None) -> float:
        """Take one request from the window (and the lane's); 0 on success, else seconds to wait."""
        raise NotImplementedError

    def lane_used(self, name: str) -> int:
        """Requests a lane took in the current window."""
        raise NotImplementedError

    def _pause(self, seconds: float, reason: str) -> None:
        metrics.UPSTREAM_WAIT_SECONDS.inc(seconds, reason=reason)
        self.sleep(seconds)

    def wait_for_budget(self, max_wait: float | None = None, lane: Lane | None = None) -> None:
        """Take a request from the window (and `lane`'s, if named), waiting at most
        `max_wait` (default: the limits')."""
        deadline = self.clock() + (self.limits.max_wait if max_wait is None else max_wait)
        while True:
            wait = self._take(lane)
            if wait <= 0:
                return
            if self.clock() + wait > deadline:
                raise BudgetWaitTooLong(wait)
            self._pause(min(wait, 1.0), "budget")

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
            self._pause(pause, "company")
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

    def quota(self) -> tuple[int, int, float] | None:
        """The upstream's daily quota as last reported: (remaining, limit, resets at, epoch
        seconds), while it has not reset; None when unknown."""
        quota = self._quota()
        if quota is None or quota[2] <= time.time():
            return None
        return quota

    def reset(self) -> None:
        raise NotImplementedError

    def snapshot(self) -> Budget:
        raise NotImplementedError

    def _live_quota(self) -> tuple[int, int] | None:
        quota = self._quota()
        if quota is None or quota[2] <= time.time():
            return None  # unknown, or reset since it was read
        return quota[0], quota[1]


class LocalLimiter(Limiter):
    def __init__(self, limits: Limits, **timing: Any) -> None:
        super().__init__(limits, **timing)
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()
        self._lanes: dict[str, deque[float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._quota_state: tuple[int, int, float] | None = None

    def _expire(self, stamps: deque[float], now: float) -> None:
        while stamps and stamps[0] <= now - self.limits.window:
            stamps.popleft()

    def _take(self, lane: Lane | None = None) -> float:
        now = self.clock()
        window = self.limits.window
        with self._lock:
            self._expire(self._stamps, now)
            wait = 0.0
            if len(self._stamps) >= self.limits.per_window:
                wait = self._stamps[0] + window - now
            lane_stamps = None
            if lane is not None:
                lane_stamps = self._lanes.setdefault(lane.name, deque())
                self._expire(lane_stamps, now)
                if len(lane_stamps) >= lane.limit:
                    wait = max(wait, lane_stamps[0] + window - now if lane_stamps else window)
            if wait > 0:
                return wait
            self._stamps.append(now)
            if lane_stamps is not None:
                lane_stamps.append(now)
            return 0.0

    def lane_used(self, name: str) -> int:
        now = self.clock()
        with self._lock:
            stamps = self._lanes.get(name)
            if not stamps:
                return 0
            self._expire(stamps, now)
            return len(stamps)

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
            self._lanes.clear()
            self._slots.clear()
            self._quota_state = None

    def snapshot(self) -> Budget:
        now = self.clock()
        with self._lock:
            used = sum(1 for stamp in self._stamps if stamp > now - self.limits.window)
            most = max(
                (sum(1 for e in slots.values() if e > now) for slots in self._slots.values()),
                default=0,
            )
        return Budget(used, most, self._live_quota())


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

# KEYS[1] window zset, KEYS[2] the lane's; ARGV: window ms, limit, member, lane's limit.
# A slot in both or in neither; else the wait until the fuller one has room.
_TAKE_LANE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
local wait = 0
local limits = {tonumber(ARGV[2]), tonumber(ARGV[4])}
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limits[i] then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local free_at = window
    if oldest[2] then free_at = tonumber(oldest[2]) + window - now end
    if free_at > wait then wait = free_at end
  end
end
if wait > 0 then return wait end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0
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


# KEYS[1] window zset; ARGV: window ms. Requests in the window, and Redis's time (ms).
_USED = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return {redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf'), now}
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
        self._take_lane_script = self.redis.register_script(_TAKE_LANE)
        self._enter_script = self.redis.register_script(_ENTER)
        self._used_script = self.redis.register_script(_USED)

    def _take(self, lane: Lane | None = None) -> float:
        window_ms = int(self.limits.window * 1000)
        member = uuid.uuid4().hex
        if lane is None:
            wait_ms = self._take_script(
                keys=[f"{self.prefix}:window"], args=[window_ms, self.limits.per_window, member]
            )
        else:
            wait_ms = self._take_lane_script(
                keys=[f"{self.prefix}:window", f"{self.prefix}:lane:{lane.name}"],
                args=[window_ms, self.limits.per_window, member, lane.limit],
            )
        return max(0.0, float(wait_ms) / 1000)

    def lane_used(self, name: str) -> int:
        used, _ = self._used_script(
            keys=[f"{self.prefix}:lane:{name}"], args=[int(self.limits.window * 1000)]
        )
        return int(used)

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

    def snapshot(self) -> Budget:
        """Read without taking anything: the window's count and each company's live leases."""
        used, now = self._used_script(
            keys=[f"{self.prefix}:window"], args=[int(self.limits.window * 1000)]
        )
        keys = list(self.redis.scan_iter(match=f"{self.prefix}:inflight:*", count=1000))
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zcount(key, f"({now}", "+inf")
            counts = pipe.execute()
        return Budget(int(used), max(counts, default=0), self._live_quota())


@cache
def get_limiter() -> Limiter:
    limits = Limits.from_settings()
    if settings.REDIS_URL:
        return RedisLimiter(limits, settings.REDIS_URL, f"{settings.CODAT_RATE_LIMIT_PREFIX}")
    limiter = LocalLimiter(limits)
    # Only this process sees its budget: it reports it with its counts, and
    # /metrics adds up the reports of every process.
    metrics.recorder.reporter = partial(budget_readings, limiter)
    return limiter


def budget_readings(limiter: Limiter) -> dict[str, float]:
    """A process's own budget, as the readings `/metrics` adds up (`exposition.budget`)."""
    budget = limiter.snapshot()
    readings = {
        metrics.BUDGET_USED.name: float(budget.used),
        metrics.IN_FLIGHT_MAX.name: float(budget.most_in_flight),
    }
    if budget.quota is not None:
        readings[metrics.QUOTA_REMAINING.name] = float(budget.quota[0])
        readings[metrics.QUOTA_LIMIT.name] = float(budget.quota[1])
    return readings
