"""The upstream client: the only code that speaks HTTP to Codat (or the sandbox).

`CODAT_BASE_URL` picks the upstream, `CODAT_API_KEY` authenticates; nothing
else changes between the sandbox and the real API. Every request takes a slot
from the shared rate limiter, is retried with exponential backoff and jitter
when retrying can help (5xx, timeouts, connection errors, short 429s, cut-off
bodies), and fails fast otherwise; a write is sent again only when it surely
did not reach the upstream (no connection, 429). Callers see one error type,
`UpstreamError`, whose `retryable` and `retry_after` say what to do next.

Whether the upstream answers, fails to, or rate limits us is recorded for
the mirror's own health (`dashboard.health_signals`: a write only when that
changes). Each typed operation names itself to the metrics: every attempt is counted by
operation and status, every failure the caller sees by operation and kind,
and every wait by its reason (`dashboard.metrics`).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from functools import partial
from http.cookiejar import CookieJar
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import quote, urlencode

import httpx
import tenacity
from django.conf import settings

from . import health_signals, metrics
from .ratelimit import (
    BudgetWaitTooLong,
    Lane,
    Limiter,
    QuotaExhausted,
    get_limiter,
    parse_reset,
)
from .vocabulary import UpstreamTrouble

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 5000  # the spec's maximum for pageSize on every list we read


# --- the records we read (the fields the dashboard uses) ---


class SyncRecord(TypedDict):
    companyId: str
    syncId: str
    syncStatusCode: int
    syncStatus: str
    errorMessage: NotRequired[str | None]
    syncExceptionMessage: NotRequired[str | None]
    syncUtc: str
    dataPushed: bool


class TransactionRecord(TypedDict):
    transactionId: str
    status: str
    message: NotRequired[str | None]
    integrationType: NotRequired[str]


class ConnectionRecord(TypedDict):
    id: str
    integrationKey: str
    sourceType: str
    platformName: str
    status: str


class CompanyRecord(TypedDict):
    id: str
    name: str
    description: NotRequired[str | None]
    created: NotRequired[str]
    dataConnections: NotRequired[list[ConnectionRecord]]


class PushOperationRecord(TypedDict):
    dataType: NotRequired[str]
    status: str
    requestedOnUtc: str
    completedOnUtc: NotRequired[str]
    changes: NotRequired[list[dict[str, Any]] | None]
    validation: NotRequired[dict[str, Any] | None]
    errorMessage: NotRequired[str | None]


class UpstreamError(Exception):
    """Anything that went wrong talking to the upstream.

    `retryable`: whether the same request may succeed later. `retry_after`:
    seconds the upstream (or our own budget) asks us to wait, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.body = body

    @property
    def is_rate_limit(self) -> bool:
        return self.status == 429 or self.retry_after is not None

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles a task's exception into its result and its retry;
        # the default rebuilds it from the message alone, which fails on the
        # keyword-only arguments.
        return (
            _rebuild_upstream_error,
            (type(self), str(self), self.retryable, self.status, self.retry_after, self.body),
        )


def _rebuild_upstream_error(
    cls: type[UpstreamError],
    message: str,
    retryable: bool,
    status: int | None,
    retry_after: float | None,
    body: Any,
) -> UpstreamError:
    return cls(message, retryable=retryable, status=status, retry_after=retry_after, body=body)


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return response.text[:300]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return response.text[:300]


# Failures that leave no doubt the upstream did not act on the request: it
# never left (our budget, no connection) or the upstream refused it unread.
_UNSENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    QuotaExhausted,
    BudgetWaitTooLong,
)


def failure_kind(exc: BaseException) -> str:
    """What went wrong, in the words of `synchealth_upstream_errors_total{kind}`."""
    if not isinstance(exc, UpstreamError):
        return "other"
    cause = exc.__cause__
    if isinstance(cause, QuotaExhausted | BudgetWaitTooLong) or (
        exc.status is None and exc.retry_after is not None
    ):
        return "budget"  # our own budget or the daily quota held the request back
    if isinstance(cause, httpx.TimeoutException):
        return "timeout"
    if isinstance(cause, httpx.TransportError):
        return "connection"
    if exc.status == 429:
        return "rate_limited"
    if exc.status is not None and exc.status >= 500:
        return "server_error"
    if exc.status is not None and exc.status >= 400:
        return "client_error"
    return "bad_response"


def not_received(exc: UpstreamError) -> bool:
    """Whether a failed request surely did nothing upstream, so sending it again is safe.

    A write that timed out, or answered 5xx or an unreadable body, may have
    been carried out: the client does not send it again by itself. The caller
    decides (a retry request first looks for the sync the POST may have started).
    """
    return exc.status == 429 or isinstance(exc.__cause__, _UNSENT)


# How each kind of failure the caller sees tells on the upstream's health: no
# answer, or a 429. A 4xx is an answer; our own budget, or a body we could not
# read, says nothing about whether it is reachable.
_TROUBLE = {
    "timeout": UpstreamTrouble.UNREACHABLE,
    "connection": UpstreamTrouble.UNREACHABLE,
    "server_error": UpstreamTrouble.UNREACHABLE,
    "rate_limited": UpstreamTrouble.RATE_LIMITED,
}


def _note_trouble(kind: str) -> None:
    if kind in _TROUBLE:
        health_signals.upstream_failed(_TROUBLE[kind])
    elif kind == "client_error":
        health_signals.upstream_answered()


class _Wait(tenacity.wait.wait_base):
    """Exponential backoff with full jitter, never shorter than Retry-After."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap = base, cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        backoff = random.uniform(
            0, min(self.cap, self.base * 2 ** (retry_state.attempt_number - 1))
        )
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        after = getattr(exc, "retry_after", None) or 0.0
        return max(backoff, after)


def _query_value(value: Any) -> str:
    """A query parameter's text, as httpx writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _before_sleep(method: str, path: str, state: tenacity.RetryCallState) -> None:
    """Between two attempts: say why, and count the wait."""
    log.info("retrying %s %s after %s", method, path, state.outcome and state.outcome.exception())
    if state.next_action is not None:
        metrics.UPSTREAM_WAIT_SECONDS.inc(state.next_action.sleep, reason="backoff")


class _NoCookies(CookieJar):
    """The API authenticates every request with its key and sets no cookies:
    keep none, and skip the parsing of every response's headers for them."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return

    def add_cookie_header(self, request: Any) -> None:
        return


class Upstream:
    """A client for one upstream; thread-safe, reuses its connections."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        limiter: Limiter | None = None,
        transport: httpx.BaseTransport | None = None,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        backoff_base: float = 0.2,
        page_size: int = MAX_PAGE_SIZE,
        max_wait: float | None = None,
        timeout: float | None = None,
        lane: Lane | None = None,
    ) -> None:
        """`max_wait`: the longest this client sleeps for the budget (default: the limits');
        `timeout`: one bound for connecting and reading (default: the settings'); `lane`:
        a share of the budget every request of this client also takes a slot from
        (polling's, `dashboard.polling`)."""
        self.lane = lane
        self.base_url = (base_url or settings.CODAT_BASE_URL).rstrip("/")
        key = api_key if api_key is not None else settings.CODAT_API_KEY
        self.limiter = limiter or get_limiter()
        self.max_wait = self.limiter.limits.max_wait if max_wait is None else max_wait
        self.max_attempts = max_attempts or settings.CODAT_MAX_ATTEMPTS
        self.max_retry_seconds = max_retry_seconds or settings.CODAT_MAX_RETRY_SECONDS
        self.backoff_base = backoff_base
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self._lock = threading.Lock()
        self.requests_made = 0
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": "Basic " + base64.b64encode(key.encode()).decode(),
                "Accept": "application/json",
                "User-Agent": "sync-health/1.0",
            },
            timeout=httpx.Timeout(
                connect=timeout or settings.CODAT_CONNECT_TIMEOUT,
                read=timeout or settings.CODAT_READ_TIMEOUT,
                write=timeout or 10.0,
                pool=timeout or 30.0,
            ),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
            transport=transport,
            cookies=_NoCookies(),
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one request path ---

    def _send_once(
        self,
        method: str,
        url: httpx.URL,
        *,
        operation: str,
        company: str | None,
        body: Any,
        headers: dict[str, str],
    ) -> Any:
        try:
            pause = self.limiter.quota_pause()
            if pause > self.max_wait:
                raise UpstreamError(
                    "Daily request quota is low; pacing requests.",
                    retryable=True,
                    retry_after=pause,
                )
            if pause:
                metrics.UPSTREAM_WAIT_SECONDS.inc(pause, reason="quota")
                time.sleep(pause)
            self.limiter.wait_for_budget(self.max_wait, self.lane)
            with self.limiter.company_slot(company):
                with self._lock:
                    self.requests_made += 1
                try:
                    response = self.http.request(method, url, json=body, headers=headers)
                    content = response.content
                except httpx.TransportError as exc:
                    no_answer = (
                        "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
                    )
                    metrics.UPSTREAM_REQUESTS.inc(operation=operation, status=no_answer)
                    raise
            metrics.UPSTREAM_REQUESTS.inc(operation=operation, status=str(response.status_code))
        except QuotaExhausted as exc:
            raise UpstreamError(
                "Daily request quota exhausted.",
                retryable=True,
                retry_after=max(1.0, exc.resume_at - time.time()),
            ) from exc
        except BudgetWaitTooLong as exc:
            raise UpstreamError(
                "Request budget is busy.", retryable=True, retry_after=exc.wait
            ) from exc
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"Timed out: {type(exc).__name__}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise UpstreamError(f"Connection failed: {exc}", retryable=True) from exc

        remaining = response.headers.get("X-Rate-Limit-Remaining", "")
        limit = response.headers.get("X-Rate-Limit-Limit", "")
        if remaining.isdecimal() and limit.isdecimal():
            self.limiter.note_quota(
                int(remaining),
                int(limit),
                parse_reset(response.headers.get("X-Rate-Limit-Reset", "")),
            )
        status = response.status_code
        if status == 429:
            after = parse_retry_after(response.headers.get("Retry-After"))
            raise UpstreamError(
                f"Rate limited: {_error_text(response)}",
                retryable=True,
                status=429,
                retry_after=after if after is not None else 1.0,
            )
        if status >= 500:
            raise UpstreamError(
                f"Upstream error {status}: {_error_text(response)}", retryable=True, status=status
            )
        if status >= 400:
            try:
                error_body = response.json()
            except (ValueError, RecursionError):
                error_body = None
            raise UpstreamError(
                f"{status}: {_error_text(response)}",
                retryable=False,
                status=status,
                body=error_body,
            )
        try:
            return json.loads(content)
        except RecursionError as exc:
            # Nested deeper than the parser goes: no body of ours is, and asking again won't help.
            raise UpstreamError(
                f"Response body from {method} {url.path} is nested too deeply to read",
                retryable=False,
                status=status,
            ) from exc
        except ValueError as exc:
            # A body cut short or garbled in transit: the same request may work.
            raise UpstreamError(
                f"Unreadable response body ({len(content)} bytes) from {method} {url.path}",
                retryable=True,
                status=status,
            ) from exc

    def _url(self, path: str, params: dict[str, Any] | None) -> httpx.URL:
        """The absolute URL, parsed once (httpx would parse a relative one three times).

        An absolute URL (a page's `next` link, as the upstream's body names
        it) must be on the base URL's origin: every request carries the API
        key, and a link in a response is no reason to send it anywhere else.
        """
        if params:
            query = urlencode([(k, _query_value(v)) for k, v in params.items()], quote_via=quote)
            separator = "&" if "?" in path else "?"
            path = f"{path}{separator}{query}"
        try:
            if not path.startswith(("http://", "https://")):
                return httpx.URL(f"{self.base_url}/{path.lstrip('/')}")
            url = httpx.URL(path)
        except httpx.InvalidURL as exc:
            raise UpstreamError(f"Not a URL: {path[:200]!r} ({exc})", retryable=False) from exc
        base = httpx.URL(self.base_url)
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            origin = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
            log.warning("refused a link to %s: the upstream is %s", origin[:200], self.base_url)
            raise UpstreamError(
                f"The upstream linked to another origin ({origin[:200]}); "
                f"only {base.scheme}://{base.netloc.decode('ascii', 'replace')} is followed.",
                retryable=False,
            )
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str = "other",
        company: str | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One call, retried when that can help; `operation` names it in the metrics."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if method != "GET" and not idempotency_key:
            raise ValueError("every write to the upstream carries an Idempotency-Key")
        max_wait = self.max_wait

        def may_retry(exc: BaseException) -> bool:
            return (
                isinstance(exc, UpstreamError)
                and exc.retryable
                and (exc.retry_after or 0) <= max_wait
                and (method == "GET" or not_received(exc))
            )

        url = self._url(path, params)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_retry_seconds),
            wait=_Wait(self.backoff_base, 10.0),
            retry=tenacity.retry_if_exception(may_retry),
            reraise=True,
            before_sleep=partial(_before_sleep, method, path),
        )
        try:
            answer = retrying(
                self._send_once,
                method,
                url,
                operation=operation,
                company=company,
                body=body,
                headers=headers,
            )
        except Exception as exc:
            kind = failure_kind(exc)
            metrics.UPSTREAM_ERRORS.inc(operation=operation, kind=kind)
            _note_trouble(kind)
            raise
        health_signals.upstream_answered()
        return answer

    def _pages(
        self,
        path: str,
        company: str | None,
        params: dict[str, Any] | None = None,
        *,
        operation: str,
    ) -> Iterator[list[Any]]:
        """Each page's results, following the HAL `next` links."""
        query: dict[str, Any] | None = {"page": 1, "pageSize": self.page_size, **(params or {})}
        url = path
        while True:
            page = self.request("GET", url, operation=operation, company=company, params=query)
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise UpstreamError(f"Unexpected page shape from {path}", retryable=False)
            yield page["results"]
            links = page.get("_links") or {}
            link = links.get("next") if isinstance(links, dict) else None
            if not link or not page["results"]:
                return
            href = link.get("href") if isinstance(link, dict) else None
            if not isinstance(href, str) or not href:
                raise UpstreamError(
                    f"Unexpected next link from {path}: {link!r:.200}", retryable=False
                )
            url, query = href, None

    # --- typed operations ---

    def list_companies(self) -> Iterator[list[CompanyRecord]]:
        return cast(
            Iterator[list[CompanyRecord]],
            self._pages("/companies", None, operation="list_companies"),
        )

    def get_company(self, company_id: str) -> CompanyRecord:
        return cast(
            CompanyRecord,
            self.request(
                "GET", f"/companies/{company_id}", operation="get_company", company=company_id
            ),
        )

    def list_connections(self, company_id: str) -> list[ConnectionRecord]:
        pages = self._pages(
            f"/companies/{company_id}/connections", company_id, operation="list_connections"
        )
        return [c for page in pages for c in page]

    def _syncs(self, company_id: str) -> str:
        return f"/companies/{company_id}/sync/expenses/syncs"

    def list_syncs(self, company_id: str) -> list[SyncRecord]:
        body = self.request(
            "GET",
            f"{self._syncs(company_id)}/list/status",
            operation="list_syncs",
            company=company_id,
        )
        if not isinstance(body, list):
            raise UpstreamError("Unexpected sync list shape", retryable=False)
        return cast(list[SyncRecord], body)

    def latest_sync(self, company_id: str) -> SyncRecord:
        return cast(
            SyncRecord,
            self.request(
                "GET",
                f"{self._syncs(company_id)}/latest/status",
                operation="latest_sync",
                company=company_id,
            ),
        )

    def last_successful_sync(self, company_id: str) -> SyncRecord:
        return cast(
            SyncRecord,
            self.request(
                "GET",
                f"{self._syncs(company_id)}/lastSuccessful/status",
                operation="last_successful_sync",
                company=company_id,
            ),
        )

    def get_sync(self, company_id: str, sync_id: str) -> SyncRecord:
        return cast(
            SyncRecord,
            self.request(
                "GET",
                f"{self._syncs(company_id)}/{sync_id}/status",
                operation="get_sync",
                company=company_id,
            ),
        )

    def transaction_pages(self, company_id: str, sync_id: str) -> Iterator[list[TransactionRecord]]:
        return cast(
            Iterator[list[TransactionRecord]],
            self._pages(
                f"{self._syncs(company_id)}/{sync_id}/transactions",
                company_id,
                operation="list_transactions",
            ),
        )

    def get_transaction(
        self, company_id: str, sync_id: str, transaction_id: str
    ) -> list[TransactionRecord]:
        body = self.request(
            "GET",
            f"{self._syncs(company_id)}/{sync_id}/transactions/{transaction_id}",
            operation="get_transaction",
            company=company_id,
        )
        return cast(list[TransactionRecord], body if isinstance(body, list) else [body])

    def get_config(self, company_id: str) -> dict[str, Any]:
        body = self.request(
            "GET",
            f"/companies/{company_id}/sync/expenses/config",
            operation="get_config",
            company=company_id,
        )
        if not isinstance(body, dict):
            raise UpstreamError("Unexpected config shape", retryable=False)
        return body

    def push_operation_pages(self, company_id: str) -> Iterator[list[PushOperationRecord]]:
        """Newest first, so a caller can stop once it reaches what it has."""
        return cast(
            Iterator[list[PushOperationRecord]],
            self._pages(
                f"/companies/{company_id}/push",
                company_id,
                {"orderBy": "-requestedOnUtc"},
                operation="list_push_operations",
            ),
        )

    def initiate_sync(self, company_id: str, sync_ids: list[str], idempotency_key: str) -> str:
        body = self.request(
            "POST",
            f"{self._syncs(company_id)}",
            operation="initiate_sync",
            company=company_id,
            body={"syncIds": sync_ids},
            idempotency_key=idempotency_key,
        )
        if not isinstance(body, dict) or not body.get("syncId"):
            raise UpstreamError("Initiate sync answered without a syncId", retryable=False)
        return str(body["syncId"])
