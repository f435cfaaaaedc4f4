"""The sandbox API's HTTP behaviour, shared by every endpoint.

Authentication (`Authorization: Basic <key>`), Codat-style rate limits and
headers, the faults the sandbox is told to inject, Codat's `ErrorMessage`
bodies, idempotency keys and the request log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .models import IdempotencyRecord, RequestLog, SandboxSettings

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(minutes=90)
_COMPANY_IN_PATH = re.compile(r"/companies/([0-9a-fA-F-]{36})")


class ApiError(Exception):
    """Raised by endpoints; rendered as Codat's ErrorMessage body."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        can_be_retried: str = "No",
        validation: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.can_be_retried = can_be_retried
        self.validation = validation
        self.headers = headers or {}


def dumps(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def json_response(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(dumps(data), status=status, content_type="application/json")


def error_response(exc: ApiError) -> HttpResponse:
    body: dict[str, object] = {
        "statusCode": exc.status,
        "service": "PublicApi",
        "error": exc.error,
        "correlationId": uuid.uuid4().hex,
        "canBeRetried": exc.can_be_retried,
        "detailedErrorCode": 0,
    }
    if exc.validation is not None:
        body["validation"] = {"errors": exc.validation, "warnings": []}
    response = json_response(body, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def check_auth(request: HttpRequest) -> None:
    """Accept `Basic <key>`, `Basic base64(key)` and `Basic base64(key:)` (curl -u)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.SANDBOX_API_KEY
    candidates = {token.strip()}
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
        candidates |= {decoded, decoded.removesuffix(":")}
    except (binascii.Error, UnicodeDecodeError):
        pass
    if scheme.lower() != "basic" or not any(
        secrets.compare_digest(c.encode(), expected.encode()) for c in candidates
    ):
        raise ApiError(401, "Unauthorized: the API key is missing or invalid.")


def _limits(config: SandboxSettings) -> tuple[int, int]:
    return (
        config.rate_limit_per_minute or settings.SANDBOX_RATE_LIMIT_PER_MINUTE,
        config.rate_limit_per_day or settings.SANDBOX_RATE_LIMIT_PER_DAY,
    )


def _count(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1


def rate_limit(config: SandboxSettings, now: datetime) -> dict[str, str]:
    """Count this request; raise 429 past a budget. Returns the quota headers."""
    per_minute, per_day = _limits(config)
    epoch = int(now.timestamp())
    minute, day = epoch // 60, epoch // 86400
    used_minute = _count(f"sandbox:rl:m:{minute}", 120)
    # Another client of the same key (the customer's own integration) shares the day's quota.
    used_day = _count(f"sandbox:rl:d:{day}", 2 * 86400) + config.quota_used_elsewhere
    day_reset = datetime.fromtimestamp((day + 1) * 86400, tz=UTC)
    headers = {
        "X-Rate-Limit-Limit": str(per_day),
        "X-Rate-Limit-Remaining": str(max(0, per_day - used_day)),
        "X-Rate-Limit-Reset": day_reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if used_day > per_day:
        raise ApiError(
            429,
            "Rate limit exceeded: the daily quota is used up.",
            can_be_retried="Yes",
            headers={**headers, "Retry-After": str((day + 1) * 86400 - epoch)},
        )
    if used_minute > per_minute:
        raise ApiError(
            429,
            "Rate limit exceeded: too many requests this minute.",
            can_be_retried="Yes",
            headers={**headers, "Retry-After": str(max(1, (minute + 1) * 60 - epoch))},
        )
    return headers


def inject_faults(config: SandboxSettings, headers: dict[str, str]) -> None:
    if config.latency_ms:
        time.sleep(config.latency_ms / 1000)
    if config.rate_limit_storm_rate and random.random() < config.rate_limit_storm_rate:
        raise ApiError(
            429,
            "Rate limit exceeded.",
            can_be_retried="Yes",
            headers={**headers, "Retry-After": "1"},
        )
    if config.error_rate and random.random() < config.error_rate:
        status = random.choice((500, 502, 503))
        raise ApiError(status, "The service is temporarily unavailable.", can_be_retried="Yes")


def _slow_chunks(body: bytes, pause: float) -> Iterator[bytes]:
    for start in range(0, len(body), 4096):
        if start:
            time.sleep(pause)
        yield body[start : start + 4096]


def shape_body(
    config: SandboxSettings, response: HttpResponse
) -> HttpResponse | StreamingHttpResponse:
    """Apply the body faults (truncation, slowness) to a finished response."""
    if (
        response.status_code == 200
        and config.truncated_body_rate
        and random.random() < config.truncated_body_rate
    ):
        response.content = response.content[: max(1, len(response.content) // 2)]
    if config.slow_body_ms:
        slow = StreamingHttpResponse(
            _slow_chunks(response.content, config.slow_body_ms / 1000),
            status=response.status_code,
            content_type=response["Content-Type"],
        )
        for name, value in response.items():
            if name.lower() != "content-length":
                slow[name] = value
        return slow
    return response


def api_endpoint(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse | StreamingHttpResponse]:
    """Wrap a sandbox endpoint with auth, limits, faults, errors and logging."""

    @csrf_exempt
    @login_not_required
    @wraps(view)
    def wrapper(
        request: HttpRequest, *args: object, **kwargs: object
    ) -> HttpResponse | StreamingHttpResponse:
        if not settings.SANDBOX_ENABLED:
            raise Http404("The sandbox upstream is not enabled.")
        started = timezone.now()
        config = SandboxSettings.current()
        quota: dict[str, str] = {}
        try:
            check_auth(request)
            quota = rate_limit(config, started)
            inject_faults(config, quota)
            response = view(request, *args, **kwargs)
        except ApiError as exc:
            response = error_response(exc)
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            response = error_response(
                ApiError(413, f"The request body is larger than {limit} bytes.")
            )
        for name, value in quota.items():
            response.setdefault(name, value)
        shaped = shape_body(config, response)
        if config.request_log_enabled:
            match = _COMPANY_IN_PATH.search(request.path)
            RequestLog.objects.create(
                method=request.method or "",
                path=request.get_full_path()[:500],
                company_id=_uuid_or_none(match.group(1)) if match else None,
                status=shaped.status_code,
                idempotency_key=request.headers.get("Idempotency-Key", "")[:255],
                started_at=started,
                finished_at=timezone.now(),
            )
        return shaped

    return wrapper


def idempotent(request: HttpRequest, handler: Callable[[], tuple[int, object]]) -> HttpResponse:
    """Run `handler` once per `Idempotency-Key` (90 minutes).

    Same key and body: the first answer again. Same key, other body: 422.
    Same key while the first request is still being processed: 409.
    With the settings' `idempotency_keys` off, every request runs `handler`.
    """
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or not SandboxSettings.current().idempotency_keys:
        status, body = handler()
        return json_response(body, status)
    if len(key) > 255:
        raise ApiError(400, "Idempotency-Key must be at most 255 characters.")
    digest = hashlib.sha256(
        f"{request.method} {request.path}\n".encode() + request.body
    ).hexdigest()
    now = timezone.now()
    IdempotencyRecord.objects.filter(key=key, created__lt=now - IDEMPOTENCY_TTL).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(key=key, request_hash=digest, created=now)
    except IntegrityError:
        record = IdempotencyRecord.objects.filter(key=key).first()
        if record is None:
            raise ApiError(
                409,
                "A request with this Idempotency-Key was just retired; retry.",
                can_be_retried="Yes",
            ) from None
        if record.request_hash != digest:
            raise ApiError(
                422, "This Idempotency-Key was already used with a different request body."
            ) from None
        if not record.completed:
            raise ApiError(
                409,
                "A request with this Idempotency-Key is still being processed.",
                can_be_retried="Yes",
            ) from None
        response = HttpResponse(
            record.response_body,
            status=record.response_status or 200,
            content_type="application/json",
        )
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        status, body = handler()
    except ApiError as exc:
        if exc.status >= 500:
            IdempotencyRecord.objects.filter(key=key).delete()
            raise
        error = error_response(exc)
        IdempotencyRecord.objects.filter(key=key).update(
            completed=True, response_status=exc.status, response_body=error.content.decode()
        )
        return error
    except Exception:
        IdempotencyRecord.objects.filter(key=key).delete()
        raise
    text = dumps(body)
    IdempotencyRecord.objects.filter(key=key).update(
        completed=True, response_status=status, response_body=text
    )
    return HttpResponse(text, status=status, content_type="application/json")


def _uuid_or_none(text: str) -> uuid.UUID | None:
    """The company a logged path names, if what stands there is an ID at all."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
