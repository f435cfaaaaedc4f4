"""What browser tests do on a page: log in through the real form, take screenshots.

Screenshots go to `artifacts/screenshots/`, failure artifacts to
`artifacts/failures/` (both relative to the repository root).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, Response, expect

from tests.support.users import PASSWORD

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "failures"


def htmx_get(path: str, *needles: str):
    """A predicate for the htmx (XHR) GET of `path` whose URL holds every needle."""

    def matches(response: Response) -> bool:
        request = response.request
        return (
            request.method == "GET"
            and request.headers.get("hx-request") == "true"
            and path in response.url
            and all(needle in response.url for needle in needles)
        )

    return matches


def watch_for_errors(page: Page) -> list[str]:
    """The page's JavaScript errors and Content-Security-Policy refusals, as they happen.

    Chromium reports what the policy blocks (an inline script or style, an
    eval) as a console error naming the policy; an uncaught exception is a
    page error. Both mean something on the page no longer works.
    """
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    return errors


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
    # The caret as it is: hiding it, Playwright adds a style to the page, which the
    # Content-Security-Policy refuses (a console error that fails the test) once a
    # field is on the page, as the header's jump field is on every one.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path
