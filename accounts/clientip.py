"""The client's address, believing X-Forwarded-For only as far as trusted proxies vouch for it.

Each proxy appends the address that connected to it, so the header reads
left to right from the (claimed) client to the last proxy. Anything a client
sends arrives on the left; only the entries added by our own proxies, on the
right, can be believed. So the walk starts at the connection's address
(REMOTE_ADDR) and moves left while the address in hand is a trusted proxy:
the first address that is not one is the client. A forged header from an
untrusted address is never read, and a forged prefix behind a trusted proxy
is never reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request: HttpRequest) -> str | None:
    """The address lockouts and logs name for this request (`AXES_CLIENT_IP_CALLABLE`)."""
    return resolve_client_ip(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        trusted_networks(settings.TRUSTED_PROXIES),
    )


def trusted_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def resolve_client_ip(remote_addr: str, forwarded_for: str, trusted: list[Network]) -> str | None:
    """The client's address, from the connection's address and the X-Forwarded-For header.

    A connection with no address came over a unix socket, which only a process
    on this machine can open: the proxy in front, whose header is then read.
    """
    hops = [hop.strip() for hop in forwarded_for.split(",")] if forwarded_for else []
    if not remote_addr.strip() and hops:
        current = _parse(hops.pop())
        if current is None:
            return None
    else:
        current = _parse(remote_addr)
    if current is None:
        return None
    while _is_trusted(current, trusted) and hops:
        previous = _parse(hops.pop())
        if previous is None:
            # A proxy we trust passed on something that is not an address;
            # the proxy itself is the last address anyone vouches for.
            break
        current = previous
    return str(current)


def _parse(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: list[Network]) -> bool:
    return any(address in network for network in trusted)
