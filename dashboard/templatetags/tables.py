"""The long tables, the status badge and the chart's bars, built in Python.

Through the template engine, fifty history rows or ninety days of chart
links cost more than the rest of the page; built here they cost a tenth of
that. Every piece of markup is made by `dashboard.markup.html`, which escapes
each value unless it is already markup: a new column is escaped without
anyone remembering to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import SafeString

from dashboard.chart import STACK, Chart
from dashboard.markup import html, join
from dashboard.problems.rows import TITLE_LIMIT, Cause, headline
from dashboard.vocabulary import CATEGORY_CSS, Category

from .humanize_extras import brief, clip, duration, stamp, thousands

register = template.Library()


def _category_css(category: int) -> str:
    return CATEGORY_CSS.get(category, Category.FAILED.css)


def badge(code: int, category: int, label: str) -> SafeString:
    return html(
        '<span class="badge cat-{}" title="{}">{}</span>', _category_css(category), label, code
    )


@register.simple_tag
def status_badge(sync: Any) -> SafeString:
    """A sync's status code, coloured by category; the shared badge of every page."""
    return badge(sync.status_code, sync.category, sync.status_label)


@cache
def _url_parts(name: str, prefix: str, urlconf: str | None) -> tuple[SafeString, SafeString]:
    marker = uuid.UUID(int=0)
    head, tail = reverse(name, args=[marker], urlconf=urlconf).split(str(marker), 1)
    return join([head]), join([tail])


def _route(name: str) -> tuple[SafeString, SafeString]:
    """The URL of a one-UUID route around its UUID, for this request's prefix, escaped.

    The tables link every row to a sync and a company; reversing each link
    costs more than the rest of the row, so each route is reversed (and
    escaped: the prefix is the deployment's) once.
    """
    return _url_parts(name, get_script_prefix(), get_urlconf())


@register.filter
def route(value: uuid.UUID | str, name: str) -> SafeString:
    """`{{ sync.sync_id|route:"sync-detail" }}`: the URL of a one-UUID route, as
    `{% url %}` gives it, with the route reversed once (see `_route`), not per row."""
    head, tail = _route(name)
    return join([head, _uuid(value), tail])


def _uuid(value: uuid.UUID | str) -> str:
    """A UUID's canonical text; anything else raises (it never reaches a link)."""
    return str(uuid.UUID(str(value)))


def cause_cell(cause: Cause | None) -> SafeString:
    """A history row's cause: its problem (linked, the cause in full in its title) and
    how many others; else its message's cause, the message in full in its title."""
    if cause is None:
        return html('<td class="cause"></td>')
    problem = cause.problem
    if problem is None:
        return html(
            '<td class="cause"><span title="{}">{}</span></td>',
            clip(cause.message, TITLE_LIMIT),
            headline(cause.message),
        )
    others = cause.others
    more = (
        html(
            ' <span class="muted" title="Also: {}">+{} more</span>',
            ", ".join(ref.label for ref in others),
            len(others),
        )
        if others
        else ""
    )
    return html(
        '<td class="cause"><a href="{}" title="{}">{}</a> {}{}</td>',
        problem.url,
        clip(problem.cause, TITLE_LIMIT),
        problem.label,
        problem.headline,
        more,
    )


NEW_MARK = html(' <span class="fresh" data-testid="new-sync">{}</span>', "new")


@register.simple_tag
def sync_rows(
    syncs: list[Any], causes: dict[int, Cause] | None = None, since: datetime | None = None
) -> SafeString:
    """The history table's rows (`selectors.HistoryRow`), with their causes by pk; those the
    mirror first saw after `since` (the reader's last visit) marked new."""
    causes = causes or {}
    company_head, company_tail = _route("company-detail")
    sync_head, sync_tail = _route("sync-detail")
    rows = []
    for sync in syncs:
        label = sync.status_label
        failed = (
            html(' <span class="bad-text">({} failed)</span>', f"{sync.items_failed:,}")
            if sync.items_failed
            else ""
        )
        if sync.retry_of_id is not None:
            # Its outstanding items are its original's, counted on that row.
            failed = join([failed, html(' <span class="muted">{}</span>', "retry")])
        elif sync.items_outstanding:
            failed = join(
                [
                    failed,
                    html(
                        ' <span class="outstanding">{} outstanding</span>',
                        f"{sync.items_outstanding:,}",
                    ),
                ]
            )
        elif sync.resolved_at is not None:
            failed = join([failed, html(' <span class="resolved">{}</span>', "resolved")])
        rows.append(
            html(
                '<tr><td data-label="Time">{}{}</td>'
                '<td data-label="Company"><a href="{}{}{}">{}</a></td>'
                '<td data-label="Platform">{}</td><td class="wide" data-label="Status">'
                '<span class="badge cat-{}" title="{}">{}</span> <span class="muted">{}</span>'
                '</td><td class="num" data-label="Items">'
                '<a href="{}{}{}?tab=items" title="The push items of this sync">{}</a>{}</td>'
                '<td class="num" data-label="Duration">{}</td>'
                '<td class="wide" data-label="Sync ID"><a class="mono" href="{}{}{}">{}</a></td>'
                "{}</tr>\n",
                stamp(sync.sync_utc),
                NEW_MARK
                if since is not None and sync.first_seen is not None and sync.first_seen > since
                else "",
                company_head,
                sync.company_uuid,
                company_tail,
                sync.company_name,
                sync.platform_name,
                _category_css(sync.category),
                label,
                sync.status_code,
                label,
                sync_head,
                sync.sync_id,
                sync_tail,
                f"{sync.items_total:,}",
                failed,
                duration(sync.duration_s),
                sync_head,
                sync.sync_id,
                sync_tail,
                sync.sync_id,
                cause_cell(causes.get(sync.pk)),
            )
        )
    return join(rows)


def _selected(bound_field: Any) -> set[str]:
    value = bound_field.value()
    if value is None:
        return {""}
    values = value if isinstance(value, list | tuple) else [value]
    return {str(v) for v in values}


@register.simple_tag
def select_field(bound_field: Any) -> SafeString:
    """A flat single-choice `<select>` for a form field, without the widget templates.

    The filter forms render on every page view; each widget through Django's
    form renderer costs as much as a query.
    """
    chosen = _selected(bound_field)
    options = join(
        html(
            '<option value="{}"{}>{}</option>',
            value,
            " selected" if str(value) in chosen else "",
            label,
        )
        for value, label in bound_field.field.choices
    )
    return html(
        '<select name="{}" id="{}">{}</select>', bound_field.html_name, bound_field.auto_id, options
    )


@register.simple_tag
def code_checkboxes(
    bound_field: Any, groups: list[tuple[str, list[tuple[int, str]]]]
) -> SafeString:
    """The status-code chips, grouped by category, checked as the field's value says."""
    chosen = _selected(bound_field)
    return join(
        html(
            '<div class="code-group"><strong>{}</strong>{}</div>',
            group,
            join(
                html(
                    '<label class="chip"><input type="checkbox" name="{}" value="{}"{}> {}</label>',
                    bound_field.html_name,
                    code,
                    " checked" if str(code) in chosen else "",
                    label,
                )
                for code, label in options
            ),
        )
        for group, options in groups
    )


# The dashboard's tables. The query strings are escaped too, as
# `{{ range_query }}` would be.


@register.simple_tag
def code_rows(by_code: list[tuple[int, str, int, int]], history_url: str, query: str) -> SafeString:
    """The "By status code" table: each code's badge, meaning and count, linked to its syncs.

    A count alone ("3") says nothing to someone who hears the link out of its
    row: hidden text names the code and its meaning.
    """
    return join(
        html(
            '<tr><td><span class="badge cat-{}">{}</span></td><td>{}</td>'
            '<td class="num"><a href="{}?{}&amp;code={}" data-code="{}">{}'
            '<span class="visually-hidden"> sync{} with status code {}: {}</span></a></td></tr>\n',
            _category_css(category),
            code,
            text,
            history_url,
            query,
            code,
            code,
            thousands(n),
            "" if n == 1 else "s",
            code,
            text,
        )
        for code, text, category, n in by_code
    )


@register.simple_tag
def failing_company_rows(rows: list[dict[str, Any]], history_url: str, query: str) -> SafeString:
    """The companies with the most failed syncs, each linked to its page and its failures."""
    head, tail = _route("company-detail")
    return join(
        html(
            '<tr><td><a href="{}{}{}">{}</a> <span class="muted">{}</span></td>'
            '<td class="num"><a href="{}?{}&amp;state=failing&amp;company={}">{}'
            '<span class="visually-hidden"> failed sync{} of {}</span></a></td>'
            "<td>{}</td></tr>\n",
            head,
            _uuid(row["company"]["company_id"]),
            tail,
            row["company"]["name"],
            row["company"]["platform_name"],
            history_url,
            query,
            _uuid(row["company"]["company_id"]),
            thousands(row["failed"]),
            "" if row["failed"] == 1 else "s",
            row["company"]["name"],
            brief(row["last"]),
        )
        for row in rows
    )


@register.simple_tag
def streak_rows(companies: list[dict[str, Any]], history_url: str) -> SafeString:
    """The longest failing streaks, each linked to its company and its syncs."""
    head, tail = _route("company-detail")
    return join(
        html(
            '<tr><td><a href="{}{}{}">{}</a></td>'
            '<td class="num"><a href="{}?range=all&amp;company={}">{} in a row'
            '<span class="visually-hidden">: the failed syncs of {}</span></a></td>'
            "<td>since {}</td></tr>\n",
            head,
            _uuid(c["company_id"]),
            tail,
            c["name"],
            history_url,
            _uuid(c["company_id"]),
            c["failing_streak"],
            c["name"],
            brief(c["failing_since"]),
        )
        for c in companies
    )


@register.simple_tag
def long_running_rows(syncs: list[dict[str, Any]]) -> SafeString:
    """The syncs running longest, each linked to its detail."""
    head, tail = _route("sync-detail")
    return join(
        html(
            '<tr><td><a href="{}{}{}" class="mono">{}</a></td><td>{}</td><td>since {}</td></tr>\n',
            head,
            _uuid(s["sync_id"]),
            tail,
            clip(s["sync_id"], 13),
            s["company"]["name"],
            brief(s["sync_utc"]),
        )
        for s in syncs
    )


@register.simple_tag
def chart_bars(chart: Chart, history_url: str, platform: str) -> SafeString:
    """The chart's stacked bars: each segment links to the history of its day and outcome.

    A partial bucket's slot is a hatched band behind its bar, whose segments
    are drawn lighter; its titles say why. The links are for the pointer
    alone (tabindex -1): ninety days of them would be ninety tab stops, so
    the keyboard stops once on the chart, whose values `chart_table` gives.
    """
    platform_query = html("&amp;platform={}", quote(platform)) if platform else ""
    parts = []
    for bar in chart.bars:
        partial = f" ({bar.partial})" if bar.partial else ""
        if bar.partial:
            parts.append(
                html(
                    '<rect class="partial-band" x="{}" y="{}" width="{}" height="{}" '
                    'fill="url(#partial-hatch)"><title>{}: partial, {}</title></rect>',
                    bar.slot_x,
                    chart.top,
                    bar.slot_width,
                    chart.baseline - chart.top,
                    bar.label,
                    bar.partial,
                )
            )
        parts.extend(
            html(
                '<a href="{}?range=custom&amp;start={}&amp;end={}&amp;category={}{}" tabindex="-1">'
                '<rect class="{}{}" x="{}" y="{}" width="{}" height="{}">'
                "<title>{}: {} {}{}</title></rect></a>",
                history_url,
                bar.day,
                bar.day,
                segment.category.key,
                platform_query,
                segment.css,
                " partial" if bar.partial else "",
                bar.x,
                segment.y,
                bar.width,
                segment.height,
                bar.label,
                segment.value,
                segment.category.label.lower(),
                partial,
            )
            for segment in bar.segments
        )
    return join(parts)


@register.simple_tag
def chart_table(chart: Chart) -> SafeString:
    """The chart's values as a table, for screen readers (the drawing is an image to them):
    a row per bar, its count of each outcome, and why it is partial if it is."""
    head = join(html('<th scope="col">{}</th>', category.label) for category, _ in STACK)
    rows = join(
        html(
            '<tr><th scope="row">{}</th>{}<td>{}</td></tr>',
            bar.label,
            join(html("<td>{}</td>", thousands(bar.bucket[c.key])) for c, _ in STACK),
            bar.partial,
        )
        for bar in chart.bars
    )
    return html(
        # Hidden by a wrapper: a table keeps the width of its content whatever its own.
        '<div class="visually-hidden"><table data-testid="chart-values">'
        "<caption>Syncs per {}</caption>"
        '<thead><tr><th scope="col">{}</th>{}<th scope="col">Partial</th></tr></thead>'
        "<tbody>{}</tbody></table></div>",
        chart.unit,
        chart.unit.capitalize(),
        head,
        rows,
    )
