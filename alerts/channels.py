"""The one place that sends to channels: notification URLs through apprise, and
our signed webhook (Standard Webhooks, signed with svix) through httpx.

`send` raises DeliveryError saying whether trying again can help; its text is
scrubbed of the channel's secrets (tokens in the URL, passwords, the signing
secret), since it is stored and shown to leads. `describe` is the channel's
destination without its secrets, for pages.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx
from django.utils import timezone

from . import crypto, netguard
from .vocabulary import ChannelKind

if TYPE_CHECKING:
    from .messages import Message
    from .models import Channel

log = logging.getLogger(__name__)

# Short: a slow or silent receiver fails this delivery and is retried later,
# it does not hold a worker (each delivery is its own task).
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ERROR_LIMIT = 2000
USER_AGENT = "SyncHealth-Alerts/1"
# Fragments shorter than this are left in error texts: scrubbing "a" or "v1"
# would make the text unreadable and hides nothing.
SHORTEST_SECRET = 4


class DeliveryError(Exception):
    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent


def describe(url: str) -> str:
    """The destination without its secrets: "mailto://smtp.example.com", "slack",
    "https://hooks.example.com" (users, passwords, paths and queries left out)."""
    scheme = netguard.scheme_of(url)
    if not scheme:
        return ""
    if scheme in netguard.FIXED_HOST_SCHEMES:
        return scheme  # the "host" of these URLs is a token
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return scheme
    if not host:
        return scheme
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def check(*, kind: str, url: str) -> None:
    """What the channel form asks before saving: the URL fits the channel's kind,
    and its destination may be sent to. Raises netguard.RefusedDestination."""
    scheme = netguard.scheme_of(url)
    if kind == ChannelKind.SIGNED_WEBHOOK and scheme not in netguard.WEB_SCHEMES:
        raise netguard.RefusedDestination("A signed webhook is sent to an http:// or https:// URL.")
    if kind == ChannelKind.NOTIFY and scheme in netguard.WEB_SCHEMES:
        import apprise

        # apprise reads some services from their own web addresses (a Slack or
        # Discord webhook's https:// URL); a plain web address it cannot send to.
        if apprise.Apprise.instantiate(url.strip()) is None:
            raise netguard.RefusedDestination(
                "No service is known at this web address. For a plain JSON webhook use "
                "json:// or jsons://, or make it a signed webhook."
            )
    netguard.check_destination(url)


def send(channel: Channel, message: Message, *, message_id: str | None = None) -> None:
    """Send `message` to `channel`; raise DeliveryError if it did not arrive.

    The URL is checked again first (DNS can change after the channel was
    saved). `message_id` is the signed webhook's `webhook-id`, the same for
    every attempt of one delivery, so a receiver can drop a repeat.
    """
    try:
        url, signing_secret = channel.url, channel.signing_secret
    except crypto.UndecryptableSecret as exc:
        raise DeliveryError(str(exc), permanent=True) from None
    secrets = secrets_of(url, signing_secret)
    try:
        check(kind=channel.kind, url=url)
        if channel.kind == ChannelKind.SIGNED_WEBHOOK:
            _post_signed(url, signing_secret, message, message_id or str(uuid.uuid4()))
        else:
            _notify(url, message)
    except netguard.RefusedDestination as exc:
        raise DeliveryError(scrub(exc.message, secrets), permanent=exc.permanent) from None
    except DeliveryError as exc:
        raise DeliveryError(scrub(exc.text, secrets), permanent=exc.permanent) from None


def _notify(url: str, message: Message) -> None:
    import apprise

    plugin = apprise.Apprise.instantiate(url.strip())
    if plugin is None:
        raise DeliveryError("apprise cannot read this URL.", permanent=True)
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(app_id="Sync Health"))
    notifier.add(plugin)
    notify_type = {
        "alert.fired": apprise.NotifyType.FAILURE,
        "alert.recovered": apprise.NotifyType.SUCCESS,
    }.get(str(message.payload.get("type")), apprise.NotifyType.INFO)
    with apprise.LogCapture(level=apprise.logging.WARNING, fmt="%(message)s") as captured:
        sent = notifier.notify(
            title=message.title,
            body=message.body,
            notify_type=notify_type,
            body_format=apprise.NotifyFormat.TEXT,
        )
    if not sent:
        logs = " ".join(captured.getvalue().split())
        raise DeliveryError(logs or "The service did not accept the message.")


def _post_signed(url: str, secret: str, message: Message, message_id: str) -> None:
    from svix.webhooks import Webhook

    body = json.dumps(message.payload, separators=(",", ":"), sort_keys=True)
    now = timezone.now()
    try:
        signature = Webhook(secret).sign(message_id, now, body)
    except Exception:
        # svix says little more than "bad base64"; the lead needs to know which field.
        raise DeliveryError(
            "The signing secret is missing or is not a whsec_… secret; enter it again.",
            permanent=True,
        ) from None
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    try:
        # Redirects are not followed: the guard checked this host, not another.
        response = httpx.post(
            url.strip(), content=body.encode(), headers=headers, timeout=WEBHOOK_TIMEOUT
        )
    except httpx.TimeoutException:
        raise DeliveryError("The receiver did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"Could not reach the receiver: {exc}") from None
    if response.is_success:
        return
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    excerpt = " ".join(response.text[:300].split())
    raise DeliveryError(
        f"The receiver answered {response.status_code}" + (f": {excerpt}" if excerpt else "."),
        permanent=permanent,
    )


def secrets_of(url: str, signing_secret: str = "") -> list[str]:
    """The parts of a channel's URL and secret that must not be shown: the whole
    URL, its user and password, its path segments and query values, and the
    host too for services whose "host" is a token."""
    url = url.strip()
    found = {url, signing_secret, signing_secret.removeprefix("whsec_")}
    try:
        parts = urlsplit(url)
        found |= {parts.username or "", parts.password or "", parts.query}
        found |= set(parts.path.split("/"))
        found |= {value for _, value in parse_qsl(parts.query)}
        if netguard.scheme_of(url) in netguard.FIXED_HOST_SCHEMES:
            found.add(parts.netloc)
    except ValueError:
        # Unreadable: only the whole URL can be recognised.
        pass
    variants = set()
    for secret in found:
        variants |= {secret, unquote(secret), quote(secret, safe="")}
    # Longest first, so a secret's part does not break the match of the whole.
    return sorted((v for v in variants if len(v) >= SHORTEST_SECRET), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "****")
    return text[:ERROR_LIMIT]
