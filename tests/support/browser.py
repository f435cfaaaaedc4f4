"""What browser tests do on a page: log in through the real form, take screenshots.

Screenshots go to `artifacts/screenshots/`, failure artifacts to
`artifacts/failures/` (both relative to the repository root).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.users import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    """Log in through the real form and land on the dashboard."""
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header.topbar nav")).to_contain_text(username)
    expect(page).to_have_url(re.compile(r"/$"))


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
