"""The destination guard: channels never reach the network the worker sits in,
unless the operator allow-lists it. Names are resolved by a stand-in DNS, so
these tests never touch the network."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from alerts.netguard import RefusedDestination, check_destination

DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "smtp.example.com": ["93.184.216.35"],
    "localhost": ["127.0.0.1", "::1"],
    "intranet.example.com": ["10.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "split.example.com": ["93.184.216.36", "192.168.1.5"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "prod-161.westeurope.logic.azure.com": ["20.50.2.1"],
}


@pytest.fixture(autouse=True)
def dns(monkeypatch, settings):
    settings.ALERTS_ALLOWED_NETWORKS = []
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        try:
            addresses = DNS.get(host) or [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port or 0, 0, 0) if ":" in a else (a, port or 0),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://localhost:8443/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://intranet.example.com/hook",
        "https://metadata.example.com/hook",
        "https://split.example.com/hook",
        "https://mapped.example.com/hook",
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
        "https://224.0.0.1/hook",
        "json://127.0.0.1:8080/hook",
        "jsons://10.0.0.1/hook",
        "mailto://10.0.0.1/support@example.com?from=alerts@example.com",
        "ntfy://localhost/topic",
    ],
)
def test_it_refuses_private_loopback_link_local_and_other_non_public_addresses(url):
    with pytest.raises(RefusedDestination, match="ALERTS_ALLOWED_NETWORKS") as refused:
        check_destination(url)
    assert refused.value.permanent


def test_it_refuses_an_e_mail_whose_smtp_server_is_private_even_behind_a_public_domain():
    url = "mailto://user:pw@example.org/support@example.com?smtp=intranet.example.com"
    with pytest.raises(RefusedDestination, match=r"10\.0\.0\.1"):
        check_destination(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/hook",
        "http://93.184.216.34:8080/hook",
        "json://hooks.example.com/path",
        "jsons://user:pw@hooks.example.com/path",
        "mailto://smtp.example.com:2525/support@example.com?from=alerts@example.com",
        "workflows://prod-161.westeurope.logic.azure.com:443/abc123/def456/?sig=sig789",
    ],
)
def test_public_addresses_pass(url):
    check_destination(url)


@pytest.mark.parametrize(
    "url",
    [
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
        "discord://123456789/abcdefghijk",
        "pagerduty://integrationkey@apikey",
        "ntfy://topic",
    ],
)
def test_services_with_their_own_fixed_host_are_not_resolved(url, dns):
    check_destination(url)
    assert dns == []


def test_an_allow_listed_network_may_be_sent_to(settings):
    settings.ALERTS_ALLOWED_NETWORKS = ["127.0.0.1/32", "10.0.0.0/8"]
    check_destination("json://127.0.0.1:8080/hook")
    check_destination("https://intranet.example.com/hook")
    with pytest.raises(RefusedDestination):
        check_destination("https://metadata.example.com/hook")


def test_a_name_that_does_not_resolve_is_refused_for_now():
    with pytest.raises(RefusedDestination, match="does not resolve") as refused:
        check_destination("https://nowhere.invalid/hook")
    assert not refused.value.permanent


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("file:///etc/passwd", "file:// is not a supported destination"),
        ("windows://", "windows:// is not a supported destination"),
        ("gopher://hooks.example.com/", "gopher:// is not a supported destination"),
        ("hooks.example.com/hook", "needs a scheme"),
        ("https:///hook", "names no host"),
        ("slack://", "cannot be read"),
    ],
)
def test_unknown_schemes_and_unreadable_urls_are_refused_with_a_clear_message(url, says):
    with pytest.raises(RefusedDestination, match=says):
        check_destination(url)
