"""Adaptive polling's schedule in Django admin, in a real browser: what polling may take
now, the tiers' intervals, and each company's tier and next poll."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from dashboard.models import Company, PollingSchedule
from dashboard.vocabulary import PollTier
from tests.support.browser import login, screenshot, watch_for_errors

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]


def test_an_admin_reads_and_changes_the_polling_schedule(page: Page, admin_user: User):
    errors = watch_for_errors(page)
    now = timezone.now()
    for n, tier in enumerate(PollTier.values):
        Company.objects.create(
            company_id=uuid.uuid4(),
            name=f"Company {n}",
            poll_tier=tier,
            poll_due=now + timedelta(minutes=5 * n),
        )
    plan = PollingSchedule.load()
    login(page, admin_user.username, "password")

    page.goto(f"/admin/dashboard/pollingschedule/{plan.pk}/change/")
    expect(page.locator(".field-now")).to_contain_text("May take")
    screenshot(page, "polling-schedule")
    page.locator("#id_share").fill("0.3")
    page.locator("#id_idle_minutes").fill("30")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("changed successfully")
    plan.refresh_from_db()
    assert (plan.share, plan.idle_minutes) == (0.3, 30)

    page.goto("/admin/dashboard/company/?poll_tier=idle")
    expect(page.locator("#result_list")).to_contain_text("Idle")
    screenshot(page, "polling-companies-by-tier")
    assert not errors, errors
