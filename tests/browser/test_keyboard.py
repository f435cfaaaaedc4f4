"""A support runner works with the keyboard alone, in Chromium, on a mirrored estate.

After logging in, nothing is clicked: the skip link, the chart as one tab stop,
`/` to a failed sync, its Push items tab by the arrow keys, its retry through
the confirm page (the worker's task run here, the sandbox finishing the new
sync), the shortcuts' help, `g h`, `j`/`k` and Enter; then the problems' and the
companies' rows, and keys typed in a field staying text.

Screenshots: keyboard-1-skip-link, keyboard-chart-focused, keyboard-2-retry-confirm,
keyboard-3-help, keyboard-4-current-row.
"""

from __future__ import annotations

import re
from unittest import mock

import pytest
from playwright.sync_api import Page, expect

from dashboard import models as mirror
from dashboard.tasks import follow_retries_task, run_retry_task
from sandbox import models as sb
from sandbox import services
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]

WIDE = {"width": 1440, "height": 900}
RETRY_POLL_MS = 15_000  # the retry page polls every 3 s


def _focused(page: Page, selector: str) -> bool:
    return page.evaluate(
        "s => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def _tab_to(page: Page, selector: str, limit: int = 80) -> int:
    """Press Tab until the focus is on `selector`; the number of presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if _focused(page, selector):
            return presses
    raise AssertionError(f"{selector} not reached in {limit} tab stops")


def _arrived(page: Page, url: re.Pattern[str]) -> None:
    """The page is at `url`, its scripts run: a key pressed before them would go unheard."""
    expect(page).to_have_url(url)
    page.wait_for_load_state("domcontentloaded")


def _outline(page: Page) -> str:
    """The outline style of what has the focus."""
    return page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")


def _in_main(page: Page) -> bool:
    return page.evaluate("() => !!document.activeElement.closest('main')")


def test_a_runner_finds_reads_retries_and_comes_back_by_keyboard_alone(
    page: Page, runner, failed_sync
):
    page.set_viewport_size(WIDE)
    login(page, runner.username)

    # The first Tab reaches the skip link, shown while it has the focus; Enter moves the
    # focus into the page's content, so the next Tab is on its first control.
    page.keyboard.press("Tab")
    skip = page.get_by_test_id("skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    assert _outline(page) == "solid", "the focus shows"
    screenshot(page, "keyboard-1-skip-link")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert _outline(page) == "none", "no ring around the whole page"
    page.keyboard.press("Tab")
    assert _in_main(page), "two tab stops reach the dashboard's content"

    # The chart is one tab stop, with its values in a table; its bars are links for the
    # pointer alone.
    figure = page.get_by_test_id("chart-figure")
    expect(figure.locator("svg.chart a").first).to_be_attached()
    assert figure.locator("svg.chart a").evaluate_all("links => links.every(a => a.tabIndex < 0)")
    _tab_to(page, '[data-testid="chart-figure"]')
    assert _outline(page) == "solid"
    page.locator("section.card", has=figure).screenshot(
        path=str(screenshot(page, "keyboard-chart-focused")), caret="initial"
    )
    expect(figure).to_have_attribute("aria-label", re.compile(r"^Chart of syncs per (day|hour)"))
    values = figure.get_by_test_id("chart-values")
    expect(values.locator("tbody tr").first).to_be_attached()
    expect(values.locator("thead th")).to_have_text(
        [re.compile("^(Day|Hour)$"), "Success", "Failed", "In progress", "Partial"]
    )
    page.keyboard.press("Tab")
    assert not page.evaluate("() => !!document.activeElement.closest('figure')")
    # The "By status code" counts say what they count.
    code_link = page.locator("a[data-code]").first
    expect(code_link.locator(".visually-hidden")).to_contain_text(
        re.compile(r" syncs? with status code \d+: \w")
    )

    # `/`, a failed sync's ID prefix, Enter: its page.
    page.keyboard.press("/")
    expect(page.locator("#jump-q")).to_be_focused()
    page.keyboard.type(str(failed_sync.sync_id)[:8])
    page.keyboard.press("Enter")
    here = f"/syncs/{failed_sync.sync_id}/"
    _arrived(page, re.compile(rf"{here}$"))

    # Its items: Tab to the tab list, an arrow key to Push items, Enter.
    _tab_to(page, "[role=tab][aria-selected=true]")
    expect(page.locator("#tab-overview")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-items")).to_be_focused()
    page.keyboard.press("Enter")
    _arrived(page, re.compile(rf"{here}\?tab=items$"))
    items = page.locator("#items-panel tbody[data-rows] > tr")
    expect(items.first).to_be_visible()
    # j marks the first item current and focuses its transaction link.
    page.keyboard.press("j")
    expect(items.first).to_have_attribute("aria-current", "true")
    expect(items.first.locator("td.mono a")).to_be_focused()

    # Back to the overview by the tab list, then the retry button and its confirm page.
    _tab_to(page, "[role=tab][aria-selected=true]")
    page.keyboard.press("Home")
    expect(page.locator("#tab-overview")).to_be_focused()
    page.keyboard.press("Enter")
    _arrived(page, re.compile(rf"{here}$"))
    _tab_to(page, '[data-testid="retry-button"]')
    page.keyboard.press("Enter")
    _arrived(page, re.compile(rf"{here}retry/$"))
    _tab_to(page, '[data-testid="confirm-retry"]')
    screenshot(page, "keyboard-2-retry-confirm")
    with mock.patch.object(run_retry_task, "delay") as delay:
        page.keyboard.press("Enter")
        _arrived(page, re.compile(r"/retries/\d+/$"))
    request = mirror.RetryRequest.objects.get(sync=failed_sync)
    delay.assert_called_once_with(request.pk)

    # The worker's part: the request goes to the sandbox, whose new sync ends, and the
    # follow-up reads it; the page says so by itself.
    run_retry_task(request.pk)
    request.refresh_from_db()
    assert services.finalize_sync(sb.Sync.objects.get(sync_id=request.new_sync_id).pk)
    assert follow_retries_task() == 1
    expect(page.get_by_test_id("retry-state")).to_have_text("Completed", timeout=RETRY_POLL_MS)

    # `?`: the help lists the shortcuts; Escape closes it and the focus goes back.
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    page.keyboard.press("?")
    help = page.get_by_test_id("shortcuts-help")
    expect(help).to_be_visible()
    keys = help.locator("dt")
    for listed in ("/", "g then d", "g then h", "g then p", "j / k", "Enter", "?", "Esc"):
        expect(keys.filter(has_text=re.compile(rf"^{re.escape(listed)}$"))).to_have_count(1)
    expect(help).to_contain_text("Go to the sync history")
    expect(help).to_contain_text("Open the current row")
    screenshot(page, "keyboard-3-help")
    page.keyboard.press("Escape")
    expect(help).to_be_hidden()
    expect(skip).to_be_focused()

    # `g h`: the history. j, j, k: the first row is current, its sync link focused.
    page.keyboard.press("g")
    page.keyboard.press("h")
    _arrived(page, re.compile(r"/syncs/$"))
    rows = page.locator("table.history tbody[data-rows] > tr")
    expect(rows.nth(1)).to_be_visible()
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_attribute("aria-current", "true")
    expect(page.locator("tbody[data-rows] > tr[aria-current]")).to_have_count(1)
    link = rows.nth(0).locator("td[data-label='Sync ID'] a")
    expect(link).to_be_focused()
    screenshot(page, "keyboard-4-current-row")
    target = link.get_attribute("href")
    assert target
    page.keyboard.press("Enter")
    _arrived(page, re.compile(rf"{re.escape(target)}$"))

    # The problems and the companies have their rows too.
    page.keyboard.press("g")
    page.keyboard.press("p")
    _arrived(page, re.compile(r"/problems/$"))
    page.keyboard.press("j")
    problems = page.locator("tbody[data-rows] > tr")
    expect(problems.first).to_have_attribute("aria-current", "true")
    expect(problems.first.locator("td.cause a")).to_be_focused()
    page.keyboard.press("g")
    page.keyboard.press("c")
    _arrived(page, re.compile(r"/companies/$"))
    companies = page.locator("tbody[data-rows] > tr")
    for _ in range(3):
        page.keyboard.press("j")
    expect(companies.nth(2)).to_have_attribute("aria-current", "true")
    expect(companies.nth(2).locator("td[data-label=Company] a")).to_be_focused()

    # In a field the keys are text: `g h` typed in the history's search stays there.
    page.keyboard.press("g")
    page.keyboard.press("h")
    _arrived(page, re.compile(r"/syncs/$"))
    search = page.locator("#id_q")
    _tab_to(page, "#id_q")
    page.keyboard.type("g h j")
    expect(search).to_have_value("g h j")
    expect(page).to_have_url(re.compile(r"/syncs/$"))
    expect(page.locator("tbody[data-rows] > tr[aria-current]")).to_have_count(0)
