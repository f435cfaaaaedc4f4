"""The pages' theme (light, dark or the system's, kept per user), whom a viewer asks to
retry, and the message after logging out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.models import UserPreference
from tests.support.factories import make_company, make_sync

THEME_URL = "/preferences/theme/"


def _theme(body: str) -> str:
    found = re.search(r'<html lang="en" data-theme="([a-z]+)">', body)
    assert found, "the <html> element names the theme"
    return found.group(1)


def _pressed(body: str) -> list[str]:
    return re.findall(r'name="theme" value="([a-z]+)" aria-pressed="true"', body)


@pytest.fixture
def failed(db):
    company = make_company(name="Acme Ltd", platform_name="Xero")
    return make_sync(
        company, code=5130, ago=timedelta(hours=3), items=[(3, None), (4, "Closed period.")]
    )


def test_pages_follow_the_system_until_the_user_chooses(viewer_client, viewer):
    body = viewer_client.get("/").content.decode()
    assert _theme(body) == "system"
    assert _pressed(body) == ["system"]
    assert not UserPreference.objects.filter(user=viewer, theme="dark").exists()


def test_the_header_switch_keeps_the_choice_and_returns_to_the_page(viewer_client, viewer):
    response = viewer_client.post(THEME_URL, {"theme": "dark", "next": "/syncs/?range=all"})
    assert response.status_code == 302
    assert response["Location"] == "/syncs/?range=all"
    assert UserPreference.objects.get(user=viewer).theme == "dark"
    body = viewer_client.get("/syncs/?range=all").content.decode()
    assert _theme(body) == "dark"
    assert _pressed(body) == ["dark"]


def test_the_choice_outlasts_the_session(client, viewer):
    client.force_login(viewer)
    client.post(THEME_URL, {"theme": "light", "next": "/"})
    client.logout()
    client.force_login(viewer)
    assert _theme(client.get("/problems/").content.decode()) == "light"


def test_the_switch_refuses_an_unknown_theme_a_get_and_a_foreign_next(viewer_client, viewer):
    assert viewer_client.post(THEME_URL, {"theme": "neon"}).status_code == 400
    assert viewer_client.get(THEME_URL).status_code == 405
    response = viewer_client.post(THEME_URL, {"theme": "dark", "next": "https://evil.example/"})
    assert response["Location"] == reverse("summary")


def test_the_switch_needs_the_csrf_token(viewer):
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(viewer)
    assert guarded.post(THEME_URL, {"theme": "dark"}).status_code == 403
    assert not UserPreference.objects.filter(user=viewer, theme="dark").exists()


def test_the_preferences_page_sets_the_theme_too(viewer_client, viewer):
    page = viewer_client.get("/preferences/").content.decode()
    assert re.search(r'<input type="radio" name="theme" value="system"[^>]* checked>', page)
    viewer_client.post(
        "/preferences/", {"time_zone": "UTC", "theme": "dark", "next": "/companies/"}
    )
    assert UserPreference.objects.get(user=viewer).theme == "dark"
    # Left out, the theme stays.
    viewer_client.post("/preferences/", {"time_zone": "UTC"})
    assert UserPreference.objects.get(user=viewer).theme == "dark"


def test_a_viewer_is_told_whom_to_ask_where_the_retry_button_would_be(
    viewer_client, runner, failed
):
    url = reverse("sync-detail", args=[failed.sync_id])
    body = viewer_client.get(url).content.decode()
    assert 'data-testid="retry-button"' not in body
    assert 'data-testid="retry-ask"' in body
    assert "Ask a support runner to retry the 1 outstanding item" in body
    runner_client = Client()
    runner_client.force_login(runner)
    runner_body = runner_client.get(url).content.decode()
    assert 'data-testid="retry-button"' in runner_body
    assert 'data-testid="retry-ask"' not in runner_body


def test_logging_out_says_so_on_the_login_page(viewer_client):
    response = viewer_client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert "You have been logged out." in response.content.decode()
