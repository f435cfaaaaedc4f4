"""A fake clock for code that takes `clock` and `sleep` callables."""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only when someone sleeps on them."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
