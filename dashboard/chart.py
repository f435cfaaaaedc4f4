"""The dashboard's stacked bar chart as geometry: bars, their segments and axis ticks.

No markup here: `{% chart_bars %}` (templatetags/tables.py) draws the bars,
the template draws the ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .vocabulary import Category

WIDTH, HEIGHT = 760, 180
TICKS = 8
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
    tick: str


@dataclass(frozen=True)
class Chart:
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Bar] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    max: int = 0


def build(buckets: list[dict[str, Any]], unit: str) -> Chart:
    """The chart of these buckets (`selectors.Summary.buckets`), hours or days."""
    if not buckets:
        return Chart()
    hourly = unit == "hour"
    peak = max(sum(b[category.key] for category, _ in STACK) for b in buckets) or 1
    slot = WIDTH / len(buckets)
    bar_width = f"{max(slot * 0.8, 1):.2f}"
    bars = []
    for index, bucket in enumerate(buckets):
        start: datetime = bucket["start"]
        y = float(HEIGHT)
        segments = []
        for category, css in STACK:
            value = bucket[category.key]
            h = value / peak * (HEIGHT - 10)
            y -= h
            if value:
                segments.append(Segment(category, css, value, f"{y:.2f}", f"{h:.2f}"))
        bars.append(
            Bar(
                x=f"{index * slot + slot * 0.1:.2f}",
                width=bar_width,
                segments=segments,
                bucket=bucket,
                day=start.strftime("%Y-%m-%d"),
                label=start.strftime("%Y-%m-%d %H:%M"),
                # The axis label: `date:"H:i"` for hours, `date:"M j"` for days.
                tick=f"{start:%H:%M}" if hourly else f"{start:%b} {start.day}",
            )
        )
    return Chart(bars=bars, ticks=bars[:: max(1, len(bars) // TICKS)], max=peak)
