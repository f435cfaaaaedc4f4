"""The dashboard chart: its y-axis at round values, its date labels, its partial buckets."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from dashboard import chart
from tests.support.factories import make_company, make_sync


@pytest.mark.parametrize(
    "peak, steps",
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 2, 4, 6, 8, 10]),
        (48, [0, 10, 20, 30, 40, 50]),
        (51, [0, 20, 40, 60]),
        (2_435, [0, 500, 1_000, 1_500, 2_000, 2_500]),
        (1_000_001, [0, 500_000, 1_000_000, 1_500_000]),
    ],
)
def test_the_axis_steps_are_round_and_reach_the_tallest_bar(peak, steps):
    assert chart.axis_steps(peak) == steps


@pytest.mark.parametrize("peak", [3, 4, 9, 11, 99, 101, 777, 12_345, 987_654])
def test_there_are_three_to_five_gridlines_above_zero(peak):
    steps = chart.axis_steps(peak)
    assert 3 <= len(steps) - 1 <= 5
    assert steps[-1] >= peak > steps[-2]
    step = steps[1]
    assert all(b - a == step for a, b in itertools.pairwise(steps))
    assert str(step).rstrip("0") in ("1", "2", "5")


def _days(first: datetime, n: int, counts=(3, 1, 0)) -> list[dict]:
    return [
        {
            "start": first + timedelta(days=i),
            "end": first + timedelta(days=i + 1),
            "success": counts[0],
            "failed": counts[1],
            "in_progress": counts[2],
        }
        for i in range(n)
    ]


def test_the_gridlines_are_labelled_and_the_bars_are_drawn_to_the_axis_top():
    built = chart.build(_days(datetime(2026, 3, 1, tzinfo=UTC), 7, (40, 8, 0)), "day")
    assert [line.label for line in built.grid] == ["0", "10", "20", "30", "40", "50"]
    assert built.max == 50
    # The 0 line is the baseline, the 50 line the plot's top.
    assert float(built.grid[0].y) == built.baseline
    assert float(built.grid[-1].y) == built.top
    # A bar of 48 reaches 48/50 of the way up.
    bar = built.bars[0]
    top = min(float(s.y) for s in bar.segments)
    assert top == pytest.approx(built.baseline - 48 / 50 * chart.HEIGHT, abs=0.01)


def test_the_x_axis_labels_days_and_hours_with_their_dates():
    days = chart.build(_days(datetime(2026, 3, 1, tzinfo=UTC), 30), "day")
    assert 5 <= len(days.ticks) <= chart.TICKS
    assert days.ticks[0].label == "Mar 1"
    start = datetime(2026, 3, 1, 20, tzinfo=UTC)
    hours = [
        {
            "start": start + timedelta(hours=i),
            "end": start + timedelta(hours=i + 1),
            "success": 1,
            "failed": 0,
            "in_progress": 0,
        }
        for i in range(24)
    ]
    labels = [tick.label for tick in chart.build(hours, "hour").ticks]
    # The day where it starts and where it changes; the hour alone between.
    assert labels[0] == "Mar 1 20:00"
    assert labels[1] == "23:00"
    assert labels[2] == "Mar 2 02:00"
    assert all(len(label) <= len("Mar 2 02:00") for label in labels)


def test_a_range_that_starts_and_ends_inside_a_day_marks_both_ends_partial():
    first = datetime(2026, 3, 1, tzinfo=UTC)
    start = first + timedelta(hours=14, minutes=23)
    end = first + timedelta(days=7, hours=9, minutes=41)
    built = chart.build(_days(first, 8), "day", start, end)
    partial = [bar.partial for bar in built.bars]
    assert partial[0] == "the day of Mar 1 counts only from 14:23"
    assert partial[-1] == "the day of Mar 8 counts only until 09:41"
    assert not any(partial[1:-1])
    assert "Partial: the day of Mar 1 counts only from 14:23; the day of Mar 8" in (
        built.description
    )


def test_a_range_of_whole_days_has_no_partial_bucket():
    first = datetime(2026, 3, 1, tzinfo=UTC)
    built = chart.build(_days(first, 7), "day", first, first + timedelta(days=7))
    assert not built.partial_notes
    assert "Partial" not in built.description
    # Nor does all time (it starts at the first bucket).
    assert not chart.build(_days(first, 7), "day", None, first + timedelta(days=7)).partial_notes


def test_the_running_hour_is_partial():
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    buckets = [
        {"start": start, "end": start + timedelta(hours=1), "success": 1, "failed": 0,
         "in_progress": 2},
    ]  # fmt: skip
    built = chart.build(buckets, "hour", start, start + timedelta(minutes=5))
    assert built.bars[0].partial == "the hour Mar 1 08:00 counts only until 08:05"


def test_the_dashboard_marks_its_partial_buckets_in_the_chart_and_in_words(viewer_client, db):
    make_sync(make_company(name="Acme"), code=2000, ago=timedelta(hours=1))
    body = viewer_client.get(reverse("summary") + "?range=7d").content.decode()
    # A rolling week starts inside a day and ends inside today.
    assert body.count('class="partial-band"') == 2
    assert 'fill="url(#partial-hatch)"' in body
    assert 'class="ok partial"' in body
    assert 'data-testid="partial-note">partial day: the day of' in body
    assert 'aria-label="Syncs per day, stacked by outcome; the axis runs from 0 to 1' in body
    assert "Partial: the day of" in body
    # No inline style anywhere in it (the strict CSP).
    svg = body[body.index('<svg class="chart"') : body.index("</svg>")]
    assert "style=" not in svg
    assert "tallest bar" not in body


def test_the_chart_is_one_tab_stop_with_its_values_in_a_table(viewer_client, db):
    company = make_company(name="Acme")
    make_sync(company, code=2000, ago=timedelta(days=2))
    make_sync(company, code=5130, ago=timedelta(days=2))
    body = viewer_client.get(reverse("summary") + "?range=30d").content.decode()
    figure = body[body.index('<figure class="chart-figure"') : body.index("</figure>")]
    assert figure.startswith('<figure class="chart-figure" tabindex="0" aria-label="Chart of syncs')
    svg = figure[figure.index("<svg") : figure.index("</svg>")]
    # Every bar's link is for the pointer: none is a tab stop.
    assert svg.count("<a ") == svg.count('tabindex="-1"') == 2
    table = figure[figure.index('<div class="visually-hidden"><table') :]
    assert "<caption>Syncs per day</caption>" in table
    assert table.count('<th scope="row">') in (30, 31)  # a row per bar
    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    assert f'<th scope="row">{day}</th><td>1</td><td>1</td><td>0</td>' in table


def test_the_status_code_counts_say_what_they_count(viewer_client, db):
    make_sync(make_company(), code=5130, ago=timedelta(hours=2))
    body = viewer_client.get(reverse("summary")).content.decode()
    assert (
        'data-code="5130">1<span class="visually-hidden"> sync with status code 5130: '
        "Data push error</span></a>"
    ) in body
