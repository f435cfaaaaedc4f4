"""Where a channel may send: never to the network the worker sits in.

A lead types a channel's URL, and the worker sends to it from inside the
deployment; without this guard a URL could reach internal services (the
database, Redis, a cloud's metadata endpoint at 169.254.169.254). So every
destination host must resolve, and every address it resolves to must be a
public one, unless it lies inside `ALERTS_ALLOWED_NETWORKS`. The channel form
checks when a URL is saved and the sender checks again before each send,
because DNS answers can change in between.

Which host is the destination depends on the scheme:

- `http`/`https` (our signed webhook, and services apprise reads from their
  own web addresses): the URL's host.
- apprise schemes whose plugin sends to a host the user names (generic JSON,
  XML and form webhooks, e-mail, ntfy, Gotify, Mattermost, Rocket.Chat, and
  Microsoft Teams, whose Power Automate workflows live on a host of their
  own): the host the plugin will connect to, read from apprise's plugin
  object, not from the URL text: `mailto://user@example.org?smtp=10.0.0.5`
  sends to 10.0.0.5, which only the plugin's `smtp_host` says.
- apprise schemes whose plugin only talks to its service's fixed public host
  (`slack://` to hooks.slack.com, `discord://` to discord.com, …): what looks
  like a host in these URLs is a token, and there is nothing to resolve.

Any other scheme is refused: apprise also reads files, local sockets and
desktop notifications, none of which a lead should point the worker at.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

# The URL's own host is the destination.
WEB_SCHEMES = frozenset({"http", "https"})

# Apprise plugins that connect to a host the user names.
USER_HOST_SCHEMES = frozenset(
    {
        "json",
        "jsons",
        "xml",
        "xmls",
        "form",
        "forms",
        "mailto",
        "mailtos",
        "ntfy",
        "ntfys",
        "gotify",
        "gotifys",
        "mmost",
        "mmosts",
        "rocket",
        "rockets",
        "workflow",
        "workflows",
    }
)

# Apprise plugins whose every request goes to their service's own public host
# (each plugin's module names it as a constant; none takes a host from the URL).
FIXED_HOST_SCHEMES = frozenset(
    {
        "slack",
        "discord",
        "pagerduty",
        "opsgenie",
        "tgram",
        "pover",
        "gchat",
        "wxteams",
        "webex",
        "splunk",
        "squadcast",
    }
)

SUPPORTED_SCHEMES = WEB_SCHEMES | USER_HOST_SCHEMES | FIXED_HOST_SCHEMES


class RefusedDestination(Exception):
    """The URL may not be sent to. `permanent` is False when asking again later
    could give another answer (the name did not resolve)."""

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def check_destination(url: str) -> None:
    """Raise RefusedDestination unless every address `url` would reach is allowed."""
    scheme = scheme_of(url)
    if scheme not in SUPPORTED_SCHEMES:
        raise RefusedDestination(_unsupported(scheme))
    if scheme in FIXED_HOST_SCHEMES:
        _plugin(url)  # a URL apprise cannot read is refused here rather than at send time
        return
    if scheme in WEB_SCHEMES:
        host, port = _web_host(url)
    else:
        host, port = _plugin_host(_plugin(url))
        if not host:
            # ntfy without a host means ntfy.sh, the service's own public host.
            return
    for address in _resolve(host, port):
        if not allowed(address):
            raise RefusedDestination(
                f"{host} is at {address}, a private, loopback, link-local or otherwise "
                "non-public address. Ask the operator to add it to ALERTS_ALLOWED_NETWORKS "
                "if the worker should send there."
            )


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.strip().partition("://")
    return scheme.lower() if sep else ""


def allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A public address, or one the operator allow-listed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for network in settings.ALERTS_ALLOWED_NETWORKS:
        if address in ipaddress.ip_network(network, strict=False):
            return True
    # is_global leaves out private, loopback, link-local, shared (100.64/10),
    # reserved and unspecified ranges, but counts most multicast as global.
    return address.is_global and not address.is_multicast


def _unsupported(scheme: str) -> str:
    if not scheme:
        return "This is not a URL: it needs a scheme, e.g. https://, mailto:// or slack://."
    return (
        f"{scheme}:// is not a supported destination. Use an e-mail (mailto://, mailtos://), "
        "Slack, Microsoft Teams (workflows://), Discord, PagerDuty or another service's URL, "
        "a JSON webhook (json://, jsons://), or a signed webhook (https://)."
    )


def _web_host(url: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise RefusedDestination("This URL cannot be read: check its host and port.") from None
    if not parts.hostname:
        raise RefusedDestination("This URL names no host.")
    return parts.hostname, port


def _plugin(url: str) -> Any:
    import apprise

    # One plugin from one URL: Apprise.add() would split a text on commas and
    # spaces into several destinations, each of them unchecked.
    plugin = apprise.Apprise.instantiate(url.strip())
    if plugin is None:
        raise RefusedDestination(
            f"This {scheme_of(url)}:// URL cannot be read; check it against the service's "
            "URL format."
        )
    return plugin


def _plugin_host(plugin: Any) -> tuple[str, int | None]:
    host = getattr(plugin, "smtp_host", "") or getattr(plugin, "host", "") or ""
    return str(host).strip("[]"), getattr(plugin, "port", None)


def _resolve(host: str, port: int | None) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        raise RefusedDestination(f"{host} does not resolve.", permanent=False) from None
    addresses = []
    for *_, sockaddr in found:
        # Strip an IPv6 zone ("fe80::1%eth0"): the address decides, not the interface.
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]))
    if not addresses:
        raise RefusedDestination(f"{host} does not resolve.", permanent=False)
    return addresses
