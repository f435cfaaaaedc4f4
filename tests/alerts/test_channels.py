"""Sending to channels: e-mail to a real SMTP server, JSON and our signed webhook
to a real HTTP receiver, and the payloads Slack and Teams are sent (their
plugins only talk to their own hosts, so the HTTP call is stood in for)."""

from __future__ import annotations

import ipaddress
import json
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from svix.webhooks import Webhook, WebhookVerificationError

from alerts.channels import DeliveryError, check, describe, send
from alerts.messages import Message
from alerts.netguard import RefusedDestination
from alerts.vocabulary import ChannelKind
from tests.support.channels import (
    SIGNING_SECRET,
    free_port,
    http_receiver,
    make_channel,
    smtp_server,
)

MESSAGE = Message(
    title="Started: Acme Ltd has failed 3 syncs in a row",
    body="Started: Acme Ltd has failed 3 syncs in a row\n\nWhen: 2026-11-28 09:14 UTC",
    payload={"type": "alert.fired", "id": "6f1c", "summary": "Acme Ltd has failed 3 syncs"},
)
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
TEAMS = "workflows://prod-161.westeurope.logic.azure.com:443/wf0123456789/sigABCDEF123/"


@pytest.fixture
def local(settings):
    settings.ALERTS_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def public_dns(monkeypatch):
    """Every name resolves to a public address: nothing here reaches the network.

    Addresses and `localhost` resolve as ever: the cache and the broker the
    suite runs with (Redis on 127.0.0.1 in CI) must still be reached."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "localhost" or _is_address(host):
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("20.50.2.1", port or 443))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _is_address(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host))
    except ValueError:
        return False
    return True


@pytest.fixture
def posted(monkeypatch):
    """The HTTP requests apprise's plugins make (every one goes through a
    requests Session), answered 200 without leaving the machine."""
    calls: list[dict] = []

    def request(session, method, url, **kwargs):
        calls.append({"method": method, "url": url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = b"ok"
        response.url = url
        return response

    monkeypatch.setattr(requests.Session, "request", request)
    return calls


@pytest.mark.system  # a real SMTP server in a thread of its own: about a second
def test_e_mail_arrives_at_a_real_smtp_server_with_the_title_and_body(db, local):
    with smtp_server() as mailbox:
        send(make_channel(mailbox.url()), MESSAGE)

    [mail] = mailbox.messages
    assert mail["Subject"] == MESSAGE.title
    assert mail["To"] == "support@example.com"
    text = mail.get_payload(decode=True) if not mail.is_multipart() else None
    body = (text or mail.get_payload(0).get_payload(decode=True)).decode()
    assert "When: 2026-11-28 09:14 UTC" in body


def test_the_generic_json_webhook_arrives_through_apprise(db, local):
    with http_receiver() as receiver:
        send(make_channel(f"json://{receiver.base}/alerts"), MESSAGE)

    [received] = receiver.requests
    assert received.path == "/alerts"
    sent = json.loads(received.body)
    assert sent["title"] == MESSAGE.title
    assert sent["message"] == MESSAGE.body
    assert sent["type"] == "failure"


def test_the_signed_webhook_verifies_with_svix_and_a_tampered_body_does_not(db, local):
    with http_receiver() as receiver:
        channel = make_channel(
            f"http://{receiver.base}/hook", kind=ChannelKind.SIGNED_WEBHOOK, secret=SIGNING_SECRET
        )
        send(channel, MESSAGE, message_id="7b0e5c1e-delivery-key")

    [received] = receiver.requests
    assert received.headers["webhook-id"] == "7b0e5c1e-delivery-key"
    Webhook(SIGNING_SECRET).verify(received.body, received.headers)
    assert json.loads(received.body) == MESSAGE.payload
    tampered = received.body.replace(b"Acme", b"Evil")
    with pytest.raises(WebhookVerificationError):
        Webhook(SIGNING_SECRET).verify(tampered, received.headers)


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (410, True), (429, False)])
def test_a_refusal_is_permanent_unless_the_receiver_asks_to_come_back(db, local, status, permanent):
    with http_receiver(status=status) as receiver:
        channel = make_channel(
            f"http://{receiver.base}/hook", kind=ChannelKind.SIGNED_WEBHOOK, secret=SIGNING_SECRET
        )
        with pytest.raises(DeliveryError, match=f"answered {status}") as failed:
            send(channel, MESSAGE)
    assert failed.value.permanent is permanent


def test_a_server_error_or_a_receiver_that_is_down_is_worth_retrying(db, local):
    with http_receiver(status=503) as receiver:
        channel = make_channel(
            f"http://{receiver.base}/hook", kind=ChannelKind.SIGNED_WEBHOOK, secret=SIGNING_SECRET
        )
        with pytest.raises(DeliveryError) as failed:
            send(channel, MESSAGE)
    assert not failed.value.permanent
    with pytest.raises(DeliveryError) as down:
        send(make_channel(f"json://127.0.0.1:{free_port()}/alerts"), MESSAGE)
    assert not down.value.permanent


def test_slack_is_sent_its_payload_at_its_own_host(db, public_dns, posted):
    send(make_channel(SLACK), MESSAGE)

    [call] = posted
    assert call["method"].upper() == "POST"
    assert call["url"] == (
        "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    )
    sent = json.loads(call["data"])
    [attachment] = sent["attachments"]
    assert attachment["title"] == MESSAGE.title
    assert attachment["text"] == MESSAGE.body
    assert attachment["color"] == "#A32037"  # apprise's colour for a failure


def test_teams_is_sent_an_adaptive_card_at_its_workflow_s_host(db, public_dns, posted):
    send(make_channel(TEAMS), MESSAGE)

    [call] = posted
    url = urlsplit(call["url"])
    assert url.hostname == "prod-161.westeurope.logic.azure.com"
    assert "/workflows/wf0123456789/triggers/manual/paths/invoke" in url.path
    assert call["params"]["sig"] == "sigABCDEF123"
    sent = json.loads(call["data"])
    [attachment] = sent["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    blocks = {block.get("id"): block for block in attachment["content"]["body"]}
    assert blocks["title"]["text"] == MESSAGE.title
    # Sent as Markdown, so apprise escapes what Markdown would read.
    assert "When: 2026\\-11\\-28 09:14 UTC" in blocks["body"]["text"]


def test_a_refused_destination_is_never_sent_to(db, posted, settings):
    settings.ALERTS_ALLOWED_NETWORKS = []
    with pytest.raises(DeliveryError, match="ALERTS_ALLOWED_NETWORKS") as refused:
        send(make_channel("json://127.0.0.1:8080/alerts"), MESSAGE)
    assert refused.value.permanent
    assert posted == []


def test_errors_name_no_secret_of_the_channel(db, local):
    url = f"json://hook-user:hunter2-password@127.0.0.1:{free_port()}/tok-98765/?key=qs-secret-42"
    with pytest.raises(DeliveryError) as failed:
        send(make_channel(url), MESSAGE)
    for secret in ("hunter2-password", "hook-user", "tok-98765", "qs-secret-42"):
        assert secret not in failed.value.text
    assert failed.value.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mailto://user:pw@smtp.example.com/a@example.com", "mailto://smtp.example.com"),
        ("mailtos://user:pw@smtp.example.com:465/a@example.com", "mailtos://smtp.example.com:465"),
        (SLACK, "slack"),
        ("discord://123456789/abcdefghijk", "discord"),
        ("https://hooks.example.com/T0/secret-path?token=abc", "https://hooks.example.com"),
        ("json://user:pw@[::1]:8080/x", "json://[::1]:8080"),
        ("not a url", ""),
    ],
)
def test_describe_shows_scheme_and_host_and_no_secret(url, shown):
    assert describe(url) == shown


def test_a_time_in_the_signature_header_is_the_sending_time(db, local, time_machine):
    time_machine.move_to(datetime(2026, 11, 28, 9, 14, tzinfo=UTC), tick=False)
    with http_receiver() as receiver:
        channel = make_channel(
            f"http://{receiver.base}/hook", kind=ChannelKind.SIGNED_WEBHOOK, secret=SIGNING_SECRET
        )
        send(channel, MESSAGE)
    [received] = receiver.requests
    assert received.headers["webhook-timestamp"] == str(
        int(datetime(2026, 11, 28, 9, 14, tzinfo=UTC).timestamp())
    )


@pytest.mark.parametrize("secret", ["", "not-base64!"])
def test_a_signed_webhook_without_a_usable_secret_is_refused_for_good(db, local, secret):
    channel = make_channel("http://127.0.0.1:9/hook", kind=ChannelKind.SIGNED_WEBHOOK)
    if secret:
        channel.signing_secret = secret
        channel.save()
    with pytest.raises(DeliveryError, match="signing secret") as refused:
        send(channel, MESSAGE)
    assert refused.value.permanent


def test_a_secret_encrypted_with_another_key_asks_to_be_entered_again(db, settings):
    channel = make_channel("slack://T1/B2/C3")
    settings.ALERTS_ENCRYPTION_KEY = "a-rotated-key"
    with pytest.raises(DeliveryError, match="enter it again") as refused:
        send(channel, MESSAGE)
    assert refused.value.permanent


@pytest.mark.parametrize(
    ("kind", "url", "says"),
    [
        (ChannelKind.SIGNED_WEBHOOK, "json://hooks.example.com/x", "http:// or https://"),
        (ChannelKind.NOTIFY, "https://hooks.example.com/x", "json:// or jsons://"),
    ],
)
def test_a_url_that_does_not_fit_its_kind_is_refused_for_good(db, public_dns, kind, url, says):
    with pytest.raises(RefusedDestination, match=says):
        check(kind=kind, url=url)
    with pytest.raises(DeliveryError, match=says) as refused:
        send(make_channel(url, kind=kind, secret=SIGNING_SECRET), MESSAGE)
    assert refused.value.permanent


def test_a_slack_webhook_s_own_web_address_is_a_notification_url(db, public_dns, posted):
    url = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
    check(kind=ChannelKind.NOTIFY, url=url)
    send(make_channel(url), MESSAGE)
    [call] = posted
    assert call["url"] == url
