"""The production start (scripts/start-production) serves pages and their static files.

gunicorn, with DEBUG off and the documented environment, behind a pretend
TLS proxy (`X-Forwarded-Proto: https`): the login page links its stylesheet
and scripts by hashed names, and WhiteNoise serves those with year-long
caching and compressed copies.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import brotli
import httpx
import pytest

from tests.support.deploy import ROOT, production_environment

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]

HTTPS = {"X-Forwarded-Proto": "https"}
STARTUP_SECONDS = 90  # collectstatic compresses every file first


def _wait_until_serving(server: subprocess.Popen, url: str, log) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the production start exited with {server.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, headers=HTTPS, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"gunicorn did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def production_server(tmp_path_factory, free_tcp_port_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("production")
    env = production_environment(
        folder / "var", STATIC_ROOT=str(folder / "static"), PYTHON=sys.executable
    )
    log = folder / "server.log"
    address = f"127.0.0.1:{free_tcp_port_factory()}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "start-production"), "--bind", address, "--workers", "1"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_until_serving(server, f"http://{address}/accounts/login/", log)
        yield f"http://{address}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _asset(html: str, pattern: str) -> str:
    found = re.search(pattern, html)
    assert found, f"no {pattern} in the page"
    return found.group(0)


def test_the_login_page_and_its_static_files_are_served_for_production(production_server):
    with httpx.Client(base_url=production_server, headers=HTTPS, timeout=10) as client:
        page = client.get("/accounts/login/")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["strict-transport-security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )
        assert "Secure" in page.headers["set-cookie"]

        hashed = r"\.[0-9a-f]{12}\."
        assets = {
            _asset(page.text, rf"/static/css/app{hashed}css"): "text/css",
            _asset(page.text, rf"/static/django_htmx/htmx-2\.min{hashed}js"): "text/javascript",
            _asset(page.text, rf"/static/js/app{hashed}js"): "text/javascript",
        }
        for url, content_type in assets.items():
            plain = client.get(url, headers={"Accept-Encoding": "identity"})
            assert plain.status_code == 200, url
            assert plain.headers["content-type"].startswith(content_type), url
            assert plain.headers["cache-control"] == "max-age=315360000, public, immutable", url
            assert "content-encoding" not in plain.headers, url

            for encoding, decompress in [("gzip", gzip.decompress), ("br", brotli.decompress)]:
                with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
                    assert response.headers["content-encoding"] == encoding, url
                    assert response.headers["vary"] == "Accept-Encoding", url
                    body = b"".join(response.iter_raw())
                assert decompress(body) == plain.content, (url, encoding)


def test_plain_http_is_sent_to_https(production_server):
    response = httpx.get(f"{production_server}/accounts/login/", timeout=10)
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://")
