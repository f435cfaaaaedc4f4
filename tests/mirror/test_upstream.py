"""The upstream client's edge cases, against httpx.MockTransport."""

from __future__ import annotations

import json
import pickle
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import httpx
import pytest

from dashboard.ratelimit import Limits, LocalLimiter
from dashboard.upstream import Upstream, UpstreamError, parse_retry_after
from tests.support.clock import FakeClock
from tests.support.upstream import mock_client

COMPANY = "8a210b68-6988-11ed-a1eb-0242ac120002"
SYNC = "6fb40d5e-b13e-11ed-afa1-0242ac120002"


@pytest.fixture(autouse=True)
def naps(monkeypatch) -> FakeClock:
    """The client's waits between attempts (tenacity's sleep), recorded instead of slept."""
    clock = FakeClock()
    monkeypatch.setattr("tenacity.nap.time", SimpleNamespace(sleep=clock.sleep))
    return clock


def sync_body() -> dict:
    return {
        "companyId": COMPANY,
        "syncId": SYNC,
        "syncStatusCode": 2000,
        "syncStatus": "Success",
        "errorMessage": "",
        "syncExceptionMessage": "",
        "syncUtc": "2026-11-20T10:00:00Z",
        "dataPushed": True,
    }


class Script:
    """Answers requests from a list, recording what was asked."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_it_sends_basic_auth_with_the_base64_key():
    script = Script(httpx.Response(200, json=sync_body()))
    mock_client(script).get_sync(COMPANY, SYNC)
    assert script.requests[0].headers["Authorization"] == "Basic a2V5"


def test_it_waits_for_retry_after_seconds_then_succeeds(naps):
    script = Script(
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "slow down"}),
        httpx.Response(200, json=sync_body()),
    )
    assert mock_client(script).get_sync(COMPANY, SYNC)["syncStatusCode"] == 2000
    assert naps.slept == [1.0]
    assert len(script.requests) == 2


def test_it_reads_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=90)
    assert 85 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 91
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("7") == 7


def test_a_long_retry_after_becomes_a_pause_not_a_sleep(naps):
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}, json={}))
    with pytest.raises(UpstreamError) as caught:
        mock_client(script).get_sync(COMPANY, SYNC)
    assert naps.slept == []
    assert caught.value.retryable and caught.value.retry_after == 3600
    assert len(script.requests) == 1


def test_server_errors_and_timeouts_are_retried_with_backoff(naps):
    script = Script(
        httpx.Response(503, json={"error": "busy"}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.Response(200, json=sync_body()),
    )
    assert mock_client(script).get_sync(COMPANY, SYNC)["syncId"] == SYNC
    assert len(script.requests) == 4
    assert len(naps.slept) == 3


def test_retries_are_bounded_and_say_retrying_may_help():
    script = Script(httpx.Response(502, json={"error": "bad gateway"}))
    with pytest.raises(UpstreamError) as caught:
        mock_client(script, max_attempts=3).get_sync(COMPANY, SYNC)
    assert caught.value.retryable and caught.value.status == 502
    assert len(script.requests) == 3


def test_other_client_errors_fail_fast():
    body = {"statusCode": 404, "error": "Sync not found", "canBeRetried": "No"}
    script = Script(httpx.Response(404, json=body))
    with pytest.raises(UpstreamError) as caught:
        mock_client(script).get_sync(COMPANY, SYNC)
    assert not caught.value.retryable
    assert caught.value.status == 404 and caught.value.body == body
    assert "Sync not found" in str(caught.value)
    assert len(script.requests) == 1


def test_a_garbled_body_is_retried():
    script = Script(
        httpx.Response(200, content=b'{"companyId": "8a2'),
        httpx.Response(200, content=b"<html>proxy error</html>"),
        httpx.Response(200, json=sync_body()),
    )
    assert mock_client(script).get_sync(COMPANY, SYNC)["dataPushed"] is True
    assert len(script.requests) == 3


def test_a_wrong_shape_fails_without_retrying():
    script = Script(httpx.Response(200, json={"unexpected": True}))
    with pytest.raises(UpstreamError) as caught:
        mock_client(script).list_syncs(COMPANY)
    assert not caught.value.retryable


def test_paging_follows_next_links_with_the_largest_page_size():
    def page(number: int, last: bool) -> httpx.Response:
        links = {"self": {"href": "/x"}, "current": {"href": f"/x?page={number}"}}
        if not last:
            links["next"] = {
                "href": f"/companies/{COMPANY}/sync/expenses/syncs/{SYNC}/transactions"
                f"?page={number + 1}&pageSize=5000"
            }
        results = [
            {"transactionId": f"00000000-0000-0000-0000-00000000000{number}", "status": "Completed"}
        ]
        return httpx.Response(
            200,
            json={
                "results": results,
                "pageNumber": number,
                "pageSize": 5000,
                "totalResults": 3,
                "_links": links,
            },
        )

    script = Script(page(1, False), page(2, False), page(3, True))
    pages = list(mock_client(script).transaction_pages(COMPANY, SYNC))
    assert [len(p) for p in pages] == [1, 1, 1]
    assert script.requests[0].url.params["pageSize"] == "5000"
    assert [r.url.params["page"] for r in script.requests] == ["1", "2", "3"]


def _first_page_linking_to(next_link: object) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "results": [{"transactionId": COMPANY, "status": "Completed"}],
            "pageNumber": 1,
            "pageSize": 5000,
            "totalResults": 2,
            "_links": {"next": next_link},
        },
    )


TRANSACTIONS = f"/companies/{COMPANY}/sync/expenses/syncs/{SYNC}/transactions?page=2"


@pytest.mark.parametrize(
    "href",
    [
        pytest.param(f"https://elsewhere.test{TRANSACTIONS}", id="another-host"),
        pytest.param(f"https://upstream.test.elsewhere.test{TRANSACTIONS}", id="host-as-prefix"),
        pytest.param(f"http://upstream.test{TRANSACTIONS}", id="another-scheme"),
        pytest.param(f"https://upstream.test:8443{TRANSACTIONS}", id="another-port"),
        pytest.param(f"https://upstream.test@elsewhere.test{TRANSACTIONS}", id="userinfo-trick"),
    ],
)
def test_a_next_link_to_another_origin_is_an_upstream_error_and_the_key_stays_home(href, caplog):
    script = Script(_first_page_linking_to({"href": href}), httpx.Response(200, json={}))
    pages = mock_client(script).transaction_pages(COMPANY, SYNC)

    assert len(next(pages)) == 1
    with pytest.raises(UpstreamError) as caught:
        next(pages)

    assert not caught.value.retryable
    assert "another origin" in str(caught.value)
    assert "only https://upstream.test is followed" in str(caught.value)
    assert [r.url.host for r in script.requests] == ["upstream.test"]
    assert "refused a link" in caplog.text


@pytest.mark.parametrize(
    "href",
    [
        pytest.param(f"https://upstream.test{TRANSACTIONS}", id="absolute"),
        pytest.param(f"https://UPSTREAM.test:443{TRANSACTIONS}", id="absolute-default-port"),
        pytest.param(TRANSACTIONS, id="relative-to-the-api-root"),
        pytest.param(f"//elsewhere.test{TRANSACTIONS}", id="scheme-relative-stays-a-path"),
    ],
)
def test_a_next_link_on_the_upstreams_origin_is_followed_with_the_key(href):
    last = httpx.Response(200, json={"results": [], "_links": {}})
    script = Script(_first_page_linking_to({"href": href}), last)

    pages = list(mock_client(script).transaction_pages(COMPANY, SYNC))

    assert [len(p) for p in pages] == [1, 0]
    assert [r.url.host for r in script.requests] == ["upstream.test", "upstream.test"]
    assert script.requests[1].headers["Authorization"] == "Basic a2V5"


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("/companies?page=2", id="a-string"),
        pytest.param({"href": 2}, id="href-not-text"),
        pytest.param({"rel": "next"}, id="no-href"),
        pytest.param({"href": "https://upstream.test/x\x00"}, id="not-a-url"),
    ],
)
def test_a_next_link_that_is_not_a_link_is_an_upstream_error(link):
    script = Script(_first_page_linking_to(link), httpx.Response(200, json={}))
    pages = mock_client(script).transaction_pages(COMPANY, SYNC)

    next(pages)
    with pytest.raises(UpstreamError) as caught:
        next(pages)

    assert not caught.value.retryable
    assert len(script.requests) == 1


def test_a_body_nested_too_deeply_to_read_fails_without_retrying():
    deep = b"[" * 100_000 + b"]" * 100_000
    script = Script(httpx.Response(200, content=deep))

    with pytest.raises(UpstreamError) as caught:
        mock_client(script).get_sync(COMPANY, SYNC)

    assert not caught.value.retryable
    assert "nested too deeply" in str(caught.value)
    assert len(script.requests) == 1


def test_an_error_body_nested_too_deeply_is_still_an_error_with_its_status():
    script = Script(httpx.Response(404, content=b"[" * 100_000))

    with pytest.raises(UpstreamError) as caught:
        mock_client(script).get_sync(COMPANY, SYNC)

    assert caught.value.status == 404
    assert caught.value.body is None


def test_every_write_carries_an_idempotency_key():
    script = Script(httpx.Response(202, json={"syncId": SYNC}))
    client = mock_client(script)
    assert client.initiate_sync(COMPANY, [SYNC], idempotency_key="retry-42") == SYNC
    sent = script.requests[0]
    assert sent.headers["Idempotency-Key"] == "retry-42"
    assert json.loads(sent.content) == {"syncIds": [SYNC]}
    with pytest.raises(ValueError):
        client.request("POST", "/companies", body={})


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.Response(503, json={"error": "busy"}),
        httpx.Response(202, content=b'{"syncId": "6fb4'),
    ],
    ids=["read-timeout", "disconnected", "5xx", "cut-off-answer"],
)
def test_a_write_that_may_have_reached_the_upstream_is_not_sent_again(failure):
    script = Script(failure, httpx.Response(202, json={"syncId": SYNC}))
    with pytest.raises(UpstreamError) as caught:
        mock_client(script).initiate_sync(COMPANY, [SYNC], idempotency_key="retry-43")
    assert caught.value.retryable  # the caller may try again, knowing what it risks
    assert len(script.requests) == 1


def test_a_write_that_surely_did_not_arrive_is_sent_again_with_its_key(naps):
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("no answer to the handshake"),
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "slow down"}),
        httpx.Response(202, json={"syncId": SYNC}),
    )
    assert mock_client(script).initiate_sync(COMPANY, [SYNC], idempotency_key="retry-44") == SYNC
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["retry-44"] * 4


def test_a_low_daily_quota_is_spread_out_and_the_reserve_kept():
    limiter = LocalLimiter(
        Limits(per_window=10_000, window=60, per_company=10, lease=60, max_wait=5)
    )
    reset = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script = Script(
        httpx.Response(
            200,
            json=sync_body(),
            headers={
                "X-Rate-Limit-Limit": "1000",
                "X-Rate-Limit-Remaining": "15",
                "X-Rate-Limit-Reset": reset,
            },
        )
    )
    client = mock_client(script, limiter=limiter)
    client.get_sync(COMPANY, SYNC)
    # 15 left of 1,000 with two hours to go: the reserve (2%) is reached.
    with pytest.raises(UpstreamError) as caught:
        client.get_sync(COMPANY, SYNC)
    assert caught.value.retryable
    assert 7000 < caught.value.retry_after <= 7200
    assert len(script.requests) == 1

    limiter.note_quota(80, 1000, time.time() + 600)
    # Under 10% left: requests are paced over the time to the reset.
    assert 9 < limiter.quota_pause() < 11
    limiter.note_quota(900, 1000, time.time() + 600)
    assert limiter.quota_pause() == 0


def test_urls_keep_the_base_path_and_the_client_keeps_no_cookies():
    answer = httpx.Response(
        200, json={"results": [], "_links": {}}, headers={"Set-Cookie": "session=abc; Path=/"}
    )
    script = Script(answer)
    limits = Limits(per_window=10_000, window=60, per_company=10, lease=60, max_wait=5)
    client = Upstream(
        base_url="https://upstream.test/sandbox/",
        api_key="key",
        limiter=LocalLimiter(limits),
        transport=httpx.MockTransport(script),
    )
    list(client.push_operation_pages(COMPANY))
    list(client.push_operation_pages(COMPANY))
    first, second = script.requests
    assert first.url.path == f"/sandbox/companies/{COMPANY}/push"
    assert dict(first.url.params) == {
        "page": "1",
        "pageSize": "5000",
        "orderBy": "-requestedOnUtc",
    }
    assert "cookie" not in second.headers
    assert client.request("GET", "/x", params={"a": True, "b": None, "c": "x y&z"}) == {
        "results": [],
        "_links": {},
    }
    assert str(script.requests[-1].url) == "https://upstream.test/sandbox/x?a=true&b=&c=x%20y%26z"


@pytest.mark.parametrize(
    "error",
    [
        UpstreamError("429: slow down", retryable=True, status=429, retry_after=7.5),
        UpstreamError("404: Company not found", retryable=False, status=404, body={"a": [1]}),
        UpstreamError("Timed out: ReadTimeout", retryable=True),
    ],
)
def test_an_upstream_error_survives_pickling_as_celery_sends_it(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UpstreamError and str(copy) == str(error)
    assert (copy.retryable, copy.status, copy.retry_after, copy.body) == (
        error.retryable, error.status, error.retry_after, error.body,
    )  # fmt: skip
    assert copy.is_rate_limit == error.is_rate_limit
