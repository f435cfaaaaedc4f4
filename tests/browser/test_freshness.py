"""The mirror's lag on the dashboard, as a person sees it: the figure, how it was learned,
and what it measures, in the own-health card (saved as `freshness-dashboard-1280.png`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from dashboard.vocabulary import Learned
from tests.support import axe
from tests.support.browser import login, screenshot
from tests.support.factories import make_company, make_sync

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]


def test_the_dashboard_shows_the_mirror_s_lag_and_what_it_measures(page: Page, viewer):
    company = make_company(name="Toft Stores")
    now = timezone.now()
    for seconds, source in ((3, Learned.WEBHOOK), (4, Learned.WEBHOOK), (420, Learned.POLL)):
        make_sync(
            company,
            learned_at=now,
            changed_at=now - timedelta(seconds=seconds),
            learned_by=source,
        )
    login(page, "viewer")

    figure = page.locator('[data-stat="mirror_lag"]')
    expect(figure).to_contain_text("7m 00s")
    expect(figure).to_contain_text("by webhook 4s (2)")
    expect(figure).to_contain_text("by poll 7m 00s (1)")
    expect(page.get_by_test_id("mirror-lag-explained")).to_contain_text("upper bound")
    assert not axe.serious(axe.scan(page))
    figure.scroll_into_view_if_needed()
    screenshot(page, "freshness-dashboard-1280")
