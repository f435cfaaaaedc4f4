"""The shared request budget: a sliding window and a per-company cap."""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid

import pytest

from dashboard.ratelimit import BudgetWaitTooLong, Lane, Limits, LocalLimiter, RedisLimiter
from tests.support.bulk_estate import max_overlap
from tests.support.clock import FakeClock
from tests.support.services import require
from tests.workers import REDIS_URL, redis_available


def on_clock(clock: FakeClock, limits: Limits) -> LocalLimiter:
    return LocalLimiter(limits, clock=clock, sleep=clock.sleep)


def max_in_any_window(stamps: list[float], window: float) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _hammer(
    limiter, companies: list[str], per_thread: int, threads: int, hold: float
) -> tuple[list, dict]:
    stamps: list[float] = []
    spans: dict[str, list[tuple[float, float]]] = {c: [] for c in companies}
    lock = threading.Lock()

    def run(index: int) -> None:
        for n in range(per_thread):
            company = companies[(index + n) % len(companies)]
            limiter.wait_for_budget()
            taken = time.time()
            with limiter.company_slot(company):
                entered = time.time()
                time.sleep(hold)
                left = time.time()
            with lock:
                stamps.append(taken)
                spans[company].append((entered, left))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return stamps, spans


def test_the_local_window_never_admits_more_than_its_budget():
    clock = FakeClock()
    limiter = on_clock(
        clock, Limits(per_window=20, window=1.0, per_company=3, lease=30, max_wait=30)
    )
    stamps = []
    for _ in range(48):
        limiter.wait_for_budget()
        stamps.append(clock())
    assert max_in_any_window(stamps, 1.0) == 20
    # It did have to wait: 48 requests at 20 a second take over two seconds.
    assert max(stamps) - min(stamps) >= 2.0


def test_the_local_budget_is_shared_by_threads():
    clock = FakeClock()  # stands still: the window never frees a place
    limiter = on_clock(clock, Limits(per_window=20, window=60, per_company=3, lease=30, max_wait=1))
    admitted, refused = [], []

    def run() -> None:
        for _ in range(6):
            try:
                limiter.wait_for_budget()
            except BudgetWaitTooLong:
                refused.append(1)
            else:
                admitted.append(1)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(admitted), len(refused)) == (20, 28)


def test_the_local_company_cap_holds_across_threads():
    limiter = LocalLimiter(Limits(per_window=1000, window=60, per_company=3, lease=30, max_wait=30))
    _, spans = _hammer(limiter, ["a", "b"], per_thread=6, threads=8, hold=0.01)
    assert sum(len(s) for s in spans.values()) == 48
    assert all(max_overlap(s) <= 3 for s in spans.values())


def test_a_caller_that_would_wait_too_long_is_told_so():
    clock = FakeClock()
    limiter = on_clock(
        clock, Limits(per_window=1, window=60, per_company=1, lease=30, max_wait=0.2)
    )
    limiter.wait_for_budget()
    with pytest.raises(BudgetWaitTooLong) as caught:
        limiter.wait_for_budget()
    assert caught.value.wait > 50
    assert clock.slept == []  # told at once, not after sleeping
    with limiter.company_slot("a"), pytest.raises(BudgetWaitTooLong), limiter.company_slot("a"):
        pass
    assert 0.2 <= sum(clock.slept) < 0.35


def test_a_slot_held_by_a_dead_worker_expires():
    clock = FakeClock()
    limiter = on_clock(
        clock, Limits(per_window=100, window=60, per_company=1, lease=0.2, max_wait=2)
    )
    assert limiter._enter("a", "dead-worker")  # never released
    started = clock()
    with limiter.company_slot("a"):
        pass
    assert 0.2 <= clock() - started < 0.35


def _process(prefix: str, queue) -> None:  # runs in a child process
    limiter = RedisLimiter(
        Limits(per_window=30, window=1.0, per_company=10, lease=30, max_wait=60), REDIS_URL, prefix
    )
    queue.put(_hammer(limiter, ["c1", "c2"], per_thread=5, threads=6, hold=0.05))


@pytest.mark.system
def test_several_processes_share_one_budget_in_redis():
    require(redis_available(), "Redis at " + REDIS_URL)
    prefix = f"test:rl:{uuid.uuid4().hex}"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_process, args=(prefix, queue)) for _ in range(4)]
    for p in processes:
        p.start()
    results = [queue.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    stamps = [s for r in results for s in r[0]]
    spans: dict[str, list] = {}
    for _, per_company in results:
        for company, items in per_company.items():
            spans.setdefault(company, []).extend(items)
    assert len(stamps) == 4 * 6 * 5
    # Stamped after each slot is granted: a process the machine holds back for a
    # moment stamps late, so the window checked is a little shorter than Redis's.
    # Four processes with budgets of their own would put up to 120 in it.
    assert max_in_any_window(stamps, 1.0 - 0.2) <= 30
    # 24 threads over two companies would be 12 each at once without the cap.
    assert all(max_overlap(s) <= 10 for s in spans.values())
    assert max(max_overlap(s) for s in spans.values()) >= 5
    RedisLimiter(Limits(1, 1, 1, 1, 1), REDIS_URL, prefix).reset()


@pytest.mark.parametrize("store", ["local", "redis"])
def test_a_lane_takes_its_share_of_the_window_and_no_more(store):
    """Polling's lane: its requests count against the budget and against its own limit;
    everyone else's only against the budget."""
    limits = Limits(per_window=10, window=60, per_company=10, lease=60, max_wait=0)
    prefix = f"test:rl:{uuid.uuid4().hex}"
    if store == "redis":
        require(redis_available(), "Redis at " + REDIS_URL)
        limiter = RedisLimiter(limits, REDIS_URL, prefix)
    else:
        limiter = LocalLimiter(limits)
    lane = Lane("poll", 4)
    try:
        for _ in range(4):
            limiter.wait_for_budget(lane=lane)
        with pytest.raises(BudgetWaitTooLong) as held:
            limiter.wait_for_budget(lane=lane)
        assert 50 < held.value.wait <= 60  # until the lane's oldest leaves the window
        for _ in range(6):
            limiter.wait_for_budget()
        with pytest.raises(BudgetWaitTooLong):
            limiter.wait_for_budget()
        with pytest.raises(BudgetWaitTooLong):
            limiter.wait_for_budget(lane=Lane("closed", 0))
        assert limiter.lane_used("poll") == 4
        assert limiter.lane_used("closed") == 0
        assert limiter.snapshot().used == 10
    finally:
        limiter.reset()
