"""Signing in, in a real browser: what a locked-out person sees."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import screenshot
from tests.support.users import PASSWORD, make_user

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(60)]

LOCKED_OUT = (
    "Too many failed sign-ins. Try again in 15 minutes or ask an administrator to unlock you."
)


def submit(page: Page, username: str, password: str) -> None:
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_locked_out_user_sees_why_and_for_how_long(page: Page, transactional_db):
    make_user("viewer", "Support viewer")
    page.goto("/accounts/login/")
    for _ in range(4):
        submit(page, "viewer", "not my password")
        expect(page.locator("p.error")).to_contain_text("didn't match")

    submit(page, "viewer", "not my password")

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(LOCKED_OUT)
    expect(page.locator("header.topbar .brand")).to_have_text("Sync Health")
    screenshot(page, "login-locked-out")

    page.get_by_role("link", name="Back to the login page").click()
    submit(page, "viewer", PASSWORD)
    expect(alert).to_contain_text(LOCKED_OUT)
    expect(page.locator("header.topbar nav")).to_have_count(0)  # not signed in


def test_the_login_page_offers_single_sign_on_and_a_reset_when_configured(
    page: Page, transactional_db, settings
):
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Example ID"
    settings.PASSWORD_RESET_ENABLED = True

    page.goto("/accounts/login/?next=/syncs/")

    sso = page.get_by_role("link", name="Sign in with Example ID")
    expect(sso).to_have_attribute("href", "/accounts/sso/start/?next=/syncs/")
    expect(page.get_by_role("link", name="Forgotten your password?")).to_be_visible()
    screenshot(page, "login-single-sign-on")
