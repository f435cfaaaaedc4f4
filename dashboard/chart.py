"""The dashboard's stacked bar chart as geometry: bars, their segments and both axes.

No markup here: `{% chart_bars %}` (templatetags/tables.py) draws the bars,
the template draws the axes. The y-axis runs from 0 to a round value at or
above the tallest bar, with a gridline at each of 3 to 5 round steps (fewer
only when the tallest bar is under 3 syncs). A bucket the range covers only
in part (the range starts or ends inside it, or it is still running) is a
partial bucket: drawn lighter over a hatched band, and said so in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .vocabulary import Category

# The whole drawing, and the plot inside it (the margins hold the axes' labels).
WIDTH = 760
LEFT, RIGHT, TOP, BOTTOM = 52, 24, 22, 30
HEIGHT = 180  # the plot's
PLOT_WIDTH = WIDTH - LEFT - RIGHT
VIEW_HEIGHT = TOP + HEIGHT + BOTTOM
# At most this many date labels under the bars, and gridline steps above 0.
TICKS = 8
MOST_STEPS = 5
# Each outcome's place in a bar, bottom first, and the class that colours it.
STACK = ((Category.SUCCESS, "ok"), (Category.FAILED, "bad"), (Category.IN_PROGRESS, "run"))


@dataclass(frozen=True)
class Segment:
    category: Category
    css: str
    value: int
    y: str
    height: str


@dataclass(frozen=True)
class Bar:
    x: str
    width: str
    segments: list[Segment]
    bucket: dict[str, Any]
    day: str
    label: str
    # Where the bar's slot starts and how wide it is (a partial bucket's band fills it).
    slot_x: str = "0"
    slot_width: str = "0"
    # Why the range covers only part of this bucket, or "" if it covers all of it.
    partial: str = ""


@dataclass(frozen=True)
class XTick:
    x: str
    label: str
    # The labelled bucket's start.
    start: datetime


@dataclass(frozen=True)
class GridLine:
    value: int
    y: str
    label: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar] = field(default_factory=list)
    ticks: list[XTick] = field(default_factory=list)
    grid: list[GridLine] = field(default_factory=list)
    unit: str = "day"
    width: int = WIDTH
    view_height: int = VIEW_HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    baseline: int = TOP + HEIGHT
    label_y: int = TOP + HEIGHT + 18
    # The y-axis's top (a round value at or above the tallest bar).
    max: int = 0

    @property
    def partial_notes(self) -> list[str]:
        return [bar.partial for bar in self.bars if bar.partial]

    @property
    def description(self) -> str:
        """The chart in words, for screen readers (its role is img)."""
        text = f"Syncs per {self.unit}, stacked by outcome; the axis runs from 0 to {self.max:,}"
        if self.bars:
            text += f", {self.bars[0].label} to {self.bars[-1].label}"
        notes = self.partial_notes
        if notes:
            text += ". Partial: " + "; ".join(notes)
        return text + "."


def axis_steps(peak: int, most: int = MOST_STEPS) -> list[int]:
    """Round values from 0 to at least `peak`: steps of 1, 2 or 5 times a power of ten,
    the smallest that needs no more than `most` of them."""
    peak = max(peak, 1)
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            steps = math.ceil(peak / step)
            if steps <= most:
                return [n * step for n in range(steps + 1)]
        magnitude *= 10


def _clock(moment: datetime) -> str:
    return f"{moment:%H:%M}"


def _day(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}"


def partial_note(
    bucket: dict[str, Any], unit: str, start: datetime | None, end: datetime | None
) -> str:
    """Why the range covers only part of this bucket, or "" if it covers all of it."""
    begins = start is not None and bucket["start"] < start
    ends = end is not None and bucket["end"] > end
    if not (begins or ends):
        return ""
    name = f"{unit} of {_day(bucket['start'])}" if unit == "day" else (
        f"hour {_day(bucket['start'])} {_clock(bucket['start'])}"
    )  # fmt: skip
    parts = []
    if begins:
        assert start is not None
        parts.append(f"from {_clock(start.astimezone(bucket['start'].tzinfo))}")
    if ends:
        assert end is not None
        parts.append(f"until {_clock(end.astimezone(bucket['start'].tzinfo))}")
    return f"the {name} counts only {' '.join(parts)}"


def build(
    buckets: list[dict[str, Any]],
    unit: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Chart:
    """The chart of these buckets (`selectors.Summary.buckets`), hours or days, of the
    range from `start` (None: from the first bucket) to `end`."""
    if not buckets:
        return Chart(unit=unit)
    hourly = unit == "hour"
    peak = max(sum(b[category.key] for category, _ in STACK) for b in buckets)
    steps = axis_steps(peak)
    top = steps[-1]
    slot = PLOT_WIDTH / len(buckets)
    bar_width = f"{max(slot * 0.8, 1):.2f}"
    bars = []
    for index, bucket in enumerate(buckets):
        begins: datetime = bucket["start"]
        y = float(TOP + HEIGHT)
        segments = []
        for category, css in STACK:
            value = bucket[category.key]
            h = value / top * HEIGHT
            y -= h
            if value:
                segments.append(Segment(category, css, value, f"{y:.2f}", f"{h:.2f}"))
        bars.append(
            Bar(
                x=f"{LEFT + index * slot + slot * 0.1:.2f}",
                width=bar_width,
                segments=segments,
                bucket=bucket,
                day=begins.strftime("%Y-%m-%d"),
                label=begins.strftime("%Y-%m-%d %H:%M") if hourly else begins.strftime("%Y-%m-%d"),
                slot_x=f"{LEFT + index * slot:.2f}",
                slot_width=f"{slot:.2f}",
                partial=partial_note(bucket, unit, start, end),
            )
        )
    every = max(1, math.ceil(len(bars) / TICKS))
    ticks = []
    shown_day = None
    for index in range(0, len(bars), every):
        begins = bars[index].bucket["start"]
        label = _day(begins)
        if hourly:
            # The day where it changes (and at the first label), else the hour alone.
            label = _clock(begins) if begins.date() == shown_day else f"{label} {_clock(begins)}"
            shown_day = begins.date()
        ticks.append(XTick(f"{LEFT + (index + 0.5) * slot:.2f}", label, begins))
    grid = [
        GridLine(value, f"{TOP + HEIGHT - value / top * HEIGHT:.2f}", f"{value:,}")
        for value in steps
    ]
    return Chart(bars=bars, ticks=ticks, grid=grid, unit=unit, max=top)
