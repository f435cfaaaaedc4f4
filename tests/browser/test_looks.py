"""How the pages look, on a desk and on a phone, light and dark, to axe too.

On the small sandbox estate mirrored through a real refresh (failures,
problems, a sync with failed items): the dashboard, the history, the
problems and one of them, the companies index, a company, a sync's three tabs and the
push items of a range, at
1440x900 and at a phone's 390x844, with the system in light and in dark
mode (the user follows the system, the default). Each is saved as
`looks-<page>-<width>-<theme>.png`; at 390 nothing is wider than the screen;
axe finds nothing serious or critical (the moderate findings are printed).
Then the header on a phone (its menu button), the user's own choice of theme
from the header, which outlasts the page, a copy button that resets, and the
word after logging out.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from dashboard.models import Problem, UserPreference
from tests.support import axe
from tests.support.browser import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(300)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
# The page's background where each theme is in force (app.css's --bg).
BACKGROUNDS = {"light": "rgb(246, 247, 251)", "dark": "rgb(16, 19, 26)"}


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def test_every_page_fits_a_phone_and_passes_axe_in_light_and_dark(page: Page, failed_sync, lead):
    sync = failed_sync
    problem = Problem.objects.filter(items_outstanding__gt=0).order_by("pk").first()
    assert problem is not None, "the estate has outstanding problems"
    pages = {
        "dashboard": "/",
        "history": "/syncs/",
        "problems": "/problems/",
        "companies": "/companies/",
        "company": f"/companies/{sync.company.company_id}/",
        "sync-overview": f"/syncs/{sync.sync_id}/",
        "sync-config": f"/syncs/{sync.sync_id}/?tab=config",
        "sync-items": f"/syncs/{sync.sync_id}/?tab=items",
        "problem": f"/problems/{problem.pk}/",
        "items-pushed": "/items/pushed/?range=all",
    }
    login(page, lead.username)
    found: list[str] = []
    moderate: set[str] = set()
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        for name, url in pages.items():
            page.set_viewport_size(WIDE)
            page.goto(url)
            expect(page.locator("body")).to_have_css("background-color", BACKGROUNDS[theme])
            for size, width in ((WIDE, "1440"), (PHONE, "390")):
                page.set_viewport_size(size)
                if size is PHONE:
                    _fits(page)
                screenshot(page, f"looks-{name}-{width}-{theme}")
                violations = axe.scan(page)
                found += [f"{name} {width} {theme}: {v}" for v in axe.serious(violations)]
                moderate |= {f"{name}: {v}" for v in violations if v not in axe.serious(violations)}
    for line in sorted(moderate):
        print(line)
    assert not found, "\n".join(found)


def test_the_header_folds_on_a_phone_and_the_theme_is_the_users_choice(
    page: Page, failed_sync, runner
):
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(PHONE)
    login(page, runner.username)
    toggle = page.get_by_role("button", name="Menu")
    links = page.locator("header.topbar .left")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(links.get_by_role("link", name="History")).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(links.get_by_role("link", name="History")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_in_viewport()
    _fits(page)
    screenshot(page, "looks-menu-390-light")
    links.get_by_role("link", name="History").click()
    expect(page).to_have_url(re.compile(r"/syncs/$"))
    expect(toggle).to_have_attribute("aria-expanded", "false")

    # Dark, chosen in the header: the same page again (as htmx last left its address),
    # dark although the system is light.
    page.set_viewport_size(WIDE)
    page.locator("#history-results th a", has_text="Company").click()
    expect(page).to_have_url(re.compile(r"/syncs/\?.*sort=company"))
    theme = page.get_by_role("group", name="Colour theme")
    theme.get_by_role("button", name="Dark").click()
    expect(page).to_have_url(re.compile(r"/syncs/\?.*sort=company"))
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(theme.get_by_role("button", name="Dark")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("body")).to_have_css("background-color", BACKGROUNDS["dark"])
    assert UserPreference.objects.get(user=runner).theme == "dark"
    page.goto(f"/syncs/{failed_sync.sync_id}/")
    expect(page.locator("body")).to_have_css("background-color", BACKGROUNDS["dark"])
    screenshot(page, "looks-chosen-dark-1440")

    # A copy button says it copied, then, a moment later, what it does again.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator("h1 button.copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == str(failed_sync.sync_id)
    expect(copy).to_have_text("Copy the sync ID", timeout=5_000)
    # Its hidden part is hidden again: the button reads "Copy" on the screen.
    expect(copy.locator(".visually-hidden")).to_have_text(" the sync ID")

    # Light, chosen, though the system turns dark; then following the system again.
    page.emulate_media(color_scheme="dark")
    page.get_by_role("group", name="Colour theme").get_by_role("button", name="Light").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    expect(page.locator("body")).to_have_css("background-color", BACKGROUNDS["light"])
    page.get_by_role("group", name="Colour theme").get_by_role("button", name="System").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "system")
    expect(page.locator("body")).to_have_css("background-color", BACKGROUNDS["dark"])
    assert UserPreference.objects.get(user=runner).theme == "system"
    page.goto("/preferences/")
    expect(page.get_by_role("radio", name=re.compile("As the system is set"))).to_be_checked()
    screenshot(page, "looks-preferences-1440-dark")
    assert not axe.serious(axe.scan(page))

    # Without JavaScript the menu button would do nothing: the header stays unfolded.
    browser = page.context.browser
    assert browser is not None
    plain = browser.new_context(
        base_url=page.url.split("/syncs/")[0], java_script_enabled=False, viewport=PHONE
    )
    try:
        bare = plain.new_page()
        login(bare, runner.username)
        expect(bare.locator("button[data-menu-toggle]")).to_be_hidden()
        expect(
            bare.locator("header.topbar .left").get_by_role("link", name="History")
        ).to_be_visible()
        assert bare.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        plain.close()

    # Logging out says so.
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator(".messages")).to_have_text("You have been logged out.")
