"""Which address a request comes from, through trusted proxies only."""

from __future__ import annotations

import pytest

from accounts.clientip import resolve_client_ip, trusted_networks

PROXIES = trusted_networks(["10.0.0.0/24", "2001:db8::/32", "192.0.2.1"])


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "client"),
    [
        # No proxy trusted, or not from one: the connection's address, header unread.
        ("203.0.113.5", "", "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        # Through one trusted proxy.
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # Through two: the first untrusted address from the right.
        ("10.0.0.5", "198.51.100.1, 192.0.2.1", "198.51.100.1"),
        # A client's own prefix is never reached.
        ("10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # A trusted proxy with no header: the proxy is all we know.
        ("10.0.0.5", "", "10.0.0.5"),
        # Every hop trusted: the leftmost.
        ("10.0.0.5", "10.0.0.9, 192.0.2.1", "10.0.0.9"),
        # Garbage from behind the proxy: stop at the proxy.
        ("10.0.0.5", "unknown", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1, not-an-ip", "10.0.0.5"),
        # Ports and brackets, as some proxies write them.
        ("10.0.0.5", "198.51.100.1:51234", "198.51.100.1"),
        ("10.0.0.5", "[2001:db9::7]:443", "2001:db9::7"),
        # A unix socket (no address): the local proxy's last hop, and nothing to its left.
        ("", "198.51.100.1", "198.51.100.1"),
        ("", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        ("", "198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("", "", None),
        # IPv6 proxies and IPv4 clients seen through a dual-stack socket.
        ("2001:db8::1", "2001:db9::7", "2001:db9::7"),
        ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(
    remote_addr, forwarded_for, client
):
    assert resolve_client_ip(remote_addr, forwarded_for, PROXIES) == client


def test_with_no_trusted_proxy_the_header_is_never_read():
    assert resolve_client_ip("10.0.0.5", "198.51.100.1", []) == "10.0.0.5"


def test_a_unix_socket_request_with_no_usable_header_has_no_address():
    assert resolve_client_ip("", "not-an-ip", PROXIES) is None
    assert resolve_client_ip("", "", []) is None
