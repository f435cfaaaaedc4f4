"""Finding things in Chromium: the header's jump by keyboard, and a view one user shares
with another.

Screenshots: `jump-results-1440.png` (a name several companies share),
`jump-header-390.png` (the header with its field on a phone), and
`saved-views-1440.png` (a page's menu of views, one shared).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from dashboard.models import SavedView
from tests.support.browser import SCREENSHOTS, login, screenshot
from tests.support.factories import make_company, make_sync
from tests.support.users import make_user

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(90)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width}px wide"


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))


@pytest.fixture
def estate(transactional_db):
    acme = make_company(name="Acme Ltd", platform_name="Xero")
    make_company(name="Acme Holdings", platform_name="QuickBooks Online")
    make_company(name="Acme Trading <b>GmbH</b>", platform_name="Sage Intacct")
    failed = make_sync(
        acme, code=5130, ago=timedelta(hours=3), items=[(4, "The account period has closed")]
    )
    make_sync(acme, code=2000, ago=timedelta(hours=1), items=[(3, None)])
    return {"acme": acme, "failed": failed}


def test_a_pasted_sync_id_prefix_in_the_header_jumps_to_its_sync(page: Page, estate):
    viewer = make_user("viewer", "Support viewer")
    login(page, viewer.username)
    field = page.locator("#jump-q")
    expect(field).not_to_be_focused()

    page.locator("main h1").click()  # the page, not a field, has the focus
    page.keyboard.press("/")
    expect(field).to_be_focused()
    expect(field).to_have_value("")  # the key focused the field; it typed nothing
    prefix = str(estate["failed"].sync_id)[:8].upper()
    page.keyboard.type(f" {prefix} ")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/syncs/{estate['failed'].sync_id}/$"))
    expect(page.locator("#sync-id")).to_have_text(str(estate["failed"].sync_id))

    # In another field `/` is text, not the shortcut.
    page.goto("/syncs/")
    search = page.locator("#id_q")
    search.click()
    page.keyboard.type("a/b")
    expect(search).to_have_value("a/b")
    expect(field).not_to_be_focused()

    # A name several companies share: a list to choose from, the names as text.
    page.set_viewport_size(WIDE)
    page.keyboard.press("Escape")
    page.locator("main h1").click()
    page.keyboard.press("/")
    page.keyboard.type("acme")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/find/\?q=acme$"))
    companies = page.get_by_test_id("jump-companies").locator("tr[data-kind=company]")
    expect(companies).to_have_count(3)
    expect(companies.nth(2)).to_contain_text("Acme Trading <b>GmbH</b>")
    expect(companies.nth(2)).to_contain_text("Sage Intacct")
    _fits(page)
    screenshot(page, "jump-results-1440")
    companies.nth(1).get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/companies/{estate['acme'].company_id}/$"))

    # Nothing found: said so, the query echoed as text.
    page.locator("main h1").click()
    page.keyboard.press("/")
    page.keyboard.type("<script>nothing</script>")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("jump-none")).to_contain_text(
        "Nothing matches “<script>nothing</script>”"
    )

    page.set_viewport_size(PHONE)
    page.goto("/")
    expect(field).to_be_visible()
    _fits(page)
    # The screen as a phone shows it (not the whole page): the header on top.
    page.screenshot(path=str(SCREENSHOTS / "jump-header-390.png"), caret="initial")


def test_a_view_shared_by_one_user_opens_for_another_who_cannot_change_it(page: Page, estate):
    runner = make_user("runner", "Support runner")
    viewer = make_user("viewer", "Support viewer")
    page.set_viewport_size(WIDE)
    login(page, runner.username)
    page.goto("/syncs/?range=all&category=failed&platform=Xero")
    expect(page.get_by_test_id("result-count")).to_have_text("1 sync")
    menu = page.get_by_test_id("saved-views")
    menu.locator("summary").click()
    save = menu.get_by_test_id("save-view")
    save.get_by_placeholder("Name of the view").fill("Failed at Xero")
    save.get_by_label("Share with the team").check()
    save.get_by_role("button", name="Save view").click()
    expect(page.get_by_test_id("view-note")).to_contain_text("Showing the view Failed at Xero")
    view = SavedView.objects.get()
    assert view.shared and view.query == "range=all&category=failed&platform=Xero"
    _log_out(page)

    login(page, viewer.username)
    page.goto("/syncs/")
    menu = page.get_by_test_id("saved-views")
    menu.locator("summary").click()
    listed = menu.locator(f'li[data-view="{view.pk}"]')
    expect(listed).to_contain_text("shared by runner")
    expect(listed.get_by_test_id("edit-view")).to_have_count(0)
    _fits(page)
    screenshot(page, "saved-views-1440")

    listed.get_by_test_id("open-view").click()
    expect(page.get_by_test_id("view-note")).to_contain_text("Showing the view Failed at Xero")
    expect(page.get_by_test_id("result-count")).to_have_text("1 sync")
    expect(page.locator("#id_category")).to_have_value("failed")

    page.goto(f"/views/{view.pk}/")
    expect(page.get_by_test_id("view-name")).to_have_text("Failed at Xero")
    expect(page.get_by_test_id("view-edit")).to_have_count(0)
    expect(page.get_by_test_id("delete-view")).to_have_count(0)
    expect(page.get_by_test_id("view-readonly")).to_be_visible()
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    for path, data in (
        (f"/views/{view.pk}/", {"name": "Mine now"}),
        (f"/views/{view.pk}/delete/", {}),
    ):
        answer = page.request.post(path, form={"csrfmiddlewaretoken": token, **data})
        assert answer.status == 403, path
    view.refresh_from_db()
    assert view.name == "Failed at Xero"

    # What the viewer may do: make it the default of their own History page.
    page.get_by_test_id("default-on").click()
    page.goto("/syncs/")
    expect(page.get_by_test_id("view-note")).to_contain_text(
        "Showing your default view Failed at Xero — show everything"
    )
    page.get_by_test_id("show-everything").click()
    expect(page).to_have_url(re.compile(r"/syncs/\?view=none$"))
    expect(page.get_by_test_id("view-note")).to_have_count(0)
