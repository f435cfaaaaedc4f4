"""Alerts in Chromium: a lead sets up a channel, tests it and adds a rule; a viewer cannot.

The channel is a generic JSON webhook (`json://`) to a receiver on 127.0.0.1,
allow-listed for the test (the network guard refuses loopback otherwise). The
test send runs eagerly, as the worker would run it, and the delivery log shows
it delivered. Screenshots go to `artifacts/screenshots/alerts-*.png`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from alerts.models import Channel, Delivery, Mute, Rule
from tests.support.browser import login, screenshot
from tests.support.factories import make_company

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.timeout(120)]

WIDE = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
TOKEN = "tok-9f8e7d6c5b4a"


class Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.received.append({"path": self.path, "body": self.rfile.read(length)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.ALERTS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_lead_sets_up_a_channel_and_a_rule_and_a_viewer_cannot(
    page: Page, browser: Browser, live_server, lead, viewer, receiver, celery_eager
):
    port = receiver.server_address[1]
    page.set_viewport_size(WIDE)
    login(page, lead.username)
    page.locator("header.topbar").get_by_role("link", name="Alerts").click()
    expect(page).to_have_url(re.compile(r"/alerts/$"))
    expect(page.get_by_test_id("new-rule")).to_be_visible()

    # A channel: the signed webhook offers its secret before saving; a JSON webhook is chosen.
    page.get_by_role("link", name="Channels").click()
    page.get_by_test_id("new-channel").click()
    expect(page.locator("#id_signing_secret")).to_be_hidden()
    page.locator("#id_kind").select_option("signed_webhook")
    expect(page.locator("#id_signing_secret")).to_have_value(
        re.compile(r"^whsec_[A-Za-z0-9+/]{32}$")
    )
    screenshot(page, "alerts-channel-new-signed")
    page.locator("#id_kind").select_option("notify")
    page.locator("#id_name").fill("Ops receiver")
    page.locator("#id_url").fill(f"json://127.0.0.1:{port}/hook?token={TOKEN}")
    page.get_by_test_id("save-channel").click()
    expect(page).to_have_url(re.compile(r"/alerts/channels/$"))
    row = page.get_by_test_id("channel-row").filter(has_text="Ops receiver")
    expect(row).to_contain_text(f"json://127.0.0.1:{port}")
    assert TOKEN not in page.content()
    screenshot(page, "alerts-channel-list")

    # The test message goes out (eagerly, as a worker would send it) and is logged delivered.
    row.get_by_test_id("send-test").click()
    expect(page).to_have_url(re.compile(r"/alerts/deliveries/\?channel=\d+"))
    delivered = page.get_by_test_id("delivery-row").first
    expect(delivered.get_by_test_id("delivery-state")).to_have_text("Delivered")
    assert len(receiver.received) == 1
    assert receiver.received[0]["path"].startswith("/hook")
    assert json.loads(receiver.received[0]["body"])
    screenshot(page, "alerts-delivery-log")

    # A rule: a company's failing streak reaching 3, to that channel.
    page.goto("/alerts/")
    page.get_by_test_id("new-rule").click()
    page.locator("#id_name").fill("Failing streaks")
    page.locator("#id_condition").select_option("streak")
    expect(page.locator("#id_min_syncs")).to_be_hidden()
    page.locator("#id_threshold").fill("3")
    page.get_by_label("Ops receiver").check()
    screenshot(page, "alerts-rule-new")
    page.get_by_test_id("save-rule").click()
    expect(page).to_have_url(re.compile(r"/alerts/rules/\d+/$"))
    expect(page.get_by_test_id("threshold")).to_have_text("3 failed syncs in a row")
    screenshot(page, "alerts-rule-detail")
    rule = Rule.objects.get()
    assert [c.name for c in rule.channels.all()] == ["Ops receiver"]

    # A company muted from its page; a channel failing for a while shows on the dashboard.
    acme = make_company(name="Acme Ltd")
    page.goto(f"/companies/{acme.company_id}/")
    page.get_by_test_id("mute-control").locator("summary").click()
    page.get_by_test_id("mute-control").get_by_label("Why").fill("Moving to a new ledger")
    page.get_by_test_id("mute-control").get_by_role("button", name="Mute").click()
    expect(page.locator(".messages")).to_contain_text("Muted Acme Ltd until removed")
    assert Mute.objects.get().company == acme
    Channel.objects.update(failing_since=timezone.now() - timedelta(minutes=20))
    page.goto("/")
    expect(page.get_by_test_id("channel-failing")).to_contain_text("Alerts to Ops receiver")
    screenshot(page, "alerts-dashboard-banner")

    page.goto("/alerts/")
    expect(page.get_by_test_id("rule-row")).to_contain_text("Failing streaks")
    expect(page.get_by_test_id("mute-row")).to_contain_text("Moving to a new ledger")
    screenshot(page, "alerts-lead")
    page.set_viewport_size(PHONE)
    screenshot(page, "alerts-lead-phone")

    # A viewer reads the rule, has no buttons, and is refused the channels.
    context = browser.new_context(base_url=live_server.url, viewport=WIDE)
    other = context.new_page()
    try:
        login(other, viewer.username)
        other.goto("/alerts/")
        expect(other.get_by_test_id("rule-row")).to_contain_text("Failing streaks")
        expect(other.get_by_test_id("new-rule")).to_have_count(0)
        expect(other.get_by_test_id("manage-hint")).to_be_visible()
        screenshot(other, "alerts-viewer")
        other.set_viewport_size(PHONE)
        screenshot(other, "alerts-viewer-phone")
        other.set_viewport_size(WIDE)
        channel = Channel.objects.get()
        for path in ("/alerts/channels/", f"/alerts/channels/{channel.pk}/", "/alerts/deliveries/"):
            response = other.goto(path)
            assert response is not None and response.status == 403, path
        expect(other.get_by_test_id("access-reason")).to_contain_text("Support lead")
        screenshot(other, "alerts-viewer-channels-403")
    finally:
        context.close()
    assert Delivery.objects.count() == 1
