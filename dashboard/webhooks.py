"""The webhook receiver: verify, store once, answer at once, refresh later.

Codat signs webhooks with the Standard Webhooks scheme through Svix. The
`svix` package checks the signature over the raw body, accepts both the
`webhook-*` and `svix-*` header families and several signatures in one header,
and refuses timestamps more than five minutes from now. The headers, the
timestamp and the declared length are checked before the body is read, so an
unsigned or stale request costs no read of up to 20 MB. A verified event is
stored once per delivery ID; its processing (a targeted refresh of the one
sync it names) runs in a Celery task, so the answer never waits for the
upstream and the order of events does not matter: the refresh reads the
upstream's current status.

Every delivery is counted by how it was answered (accepted, ignored,
duplicate, rejected and why) and timed; a processed one by how long the
mirror took to show it (`dashboard.metrics`).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from svix.webhooks import Webhook, WebhookVerificationError

from . import health_signals, ingest, metrics
from .db import webhooks as db_webhooks
from .ingest import parse_time
from .ingest.carried import webhook_items
from .models import WebhookEvent
from .upstream import Upstream, UpstreamError
from .vocabulary import Learned

log = logging.getLogger(__name__)

# Event types that name a sync whose status the mirror should re-read.
SYNC_EVENTS = {
    "expenses.sync.successful",
    "expenses.sync.unsuccessful",
    "SyncCompleted",
    "SyncFailed",
}
_LEGACY_RULES = {"Sync Completed": "SyncCompleted", "Sync Failed": "SyncFailed"}


class Parsed:
    def __init__(
        self,
        event_type: str,
        company_id: uuid.UUID | None,
        sync_id: uuid.UUID | None,
        generated: datetime | None,
    ) -> None:
        self.event_type = event_type
        self.company_id = company_id
        self.sync_id = sync_id
        self.generated = generated


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _name(value: Any) -> str:
    """An event's type as stored: text, at most 100 characters, without the NUL that
    JSON's \\u0000 lets in and PostgreSQL's text cannot hold."""
    return str(value).replace("\x00", "")[:100]


def parse_event(body: dict[str, Any]) -> Parsed:
    """Both formats: the current `expenses.sync.*` and the legacy rule events."""
    if "eventType" in body:
        payload: dict[str, Any] = body["payload"] if isinstance(body.get("payload"), dict) else {}
        company = payload.get("referenceCompany") or {}
        company_id = _uuid(company.get("id") if isinstance(company, dict) else None)
        return Parsed(
            _name(body.get("eventType")),
            company_id,
            _uuid(payload.get("syncId")),
            parse_time(body.get("generatedDate"))
            if isinstance(body.get("generatedDate"), str)
            else None,
        )
    rule = _name(body.get("RuleType") or body.get("Type") or "")
    data: dict[str, Any] = body["Data"] if isinstance(body.get("Data"), dict) else {}
    return Parsed(
        _LEGACY_RULES.get(rule, rule or "unknown")[:100],
        _uuid(body.get("CompanyId")),
        _uuid(data.get("syncId") or data.get("SyncId")),
        None,
    )


class Answer(JsonResponse):
    """The receiver's answer to a delivery, and what it counts as in the metrics."""

    def __init__(self, data: dict[str, str], *, outcome: str, reason: str = "", status: int = 200):
        super().__init__(data, status=status)
        self.outcome = outcome
        self.reason = reason


def _refuse(status: int, message: str, reason: str) -> Answer:
    """A rejected delivery; `reason` names the refusal in the metrics."""
    return Answer({"error": message}, outcome="rejected", reason=reason, status=status)


# Svix refuses a timestamp further than this from now; so does the check before the body is read.
TOLERANCE = timedelta(minutes=5)
# One signature: a version, a comma, base64 (several are separated by spaces).
_SIGNATURE = re.compile(r"v\d+,[A-Za-z0-9+/=]+")


def _signature_header(request: HttpRequest, name: str) -> str:
    """A Standard Webhooks header, read as svix reads it: `svix-*`, else `webhook-*`."""
    return request.headers.get(f"svix-{name}") or request.headers.get(f"webhook-{name}") or ""


def _refused_unread(request: HttpRequest) -> Answer | None:
    """Why a delivery is refused on its headers alone; None if its body is worth reading.

    A request without a signature, with a stale one, or larger than any
    event, costs no read of its body (up to `WEBHOOK_MAX_BODY_BYTES`).
    """
    msg_id, stamp, signature = (
        _signature_header(request, n) for n in ("id", "timestamp", "signature")
    )
    if not (msg_id and stamp and signature):
        return _refuse(
            400,
            "Signature verification failed: the id, timestamp and signature headers are required.",
            "unsigned",
        )
    if not all(_SIGNATURE.fullmatch(part) for part in signature.split()):
        return _refuse(
            400,
            "Signature verification failed: the signature header is malformed.",
            "malformed_signature",
        )
    try:
        sent = datetime.fromtimestamp(float(stamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return _refuse(
            400,
            "Signature verification failed: the timestamp is not a Unix time.",
            "bad_timestamp",
        )
    if abs(timezone.now() - sent) > TOLERANCE:
        return _refuse(
            400,
            "Signature verification failed: the timestamp is more than 5 minutes from now.",
            "stale_timestamp",
        )
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refuse(400, "Invalid Content-Length.", "bad_length")
    if declared < 0:
        return _refuse(400, "Invalid Content-Length.", "bad_length")
    if declared > limit:
        return _refuse(413, f"Body larger than {limit} bytes.", "too_large")
    return None


@csrf_exempt
@login_not_required
@require_POST
def receive(request: HttpRequest) -> JsonResponse:
    started = time.perf_counter()
    answer = _receive(request)
    metrics.WEBHOOK_DELIVERIES.inc(outcome=answer.outcome, reason=answer.reason)
    metrics.WEBHOOK_RESPONSE_SECONDS.observe(time.perf_counter() - started, outcome=answer.outcome)
    return answer


def _receive(request: HttpRequest) -> Answer:
    secret = settings.CODAT_WEBHOOK_SECRET
    if not secret:
        return _refuse(
            503, "Webhooks are not configured (CODAT_WEBHOOK_SECRET is empty).", "not_configured"
        )
    refused = _refused_unread(request)
    if refused is not None:
        return refused
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    # Read the stream directly: the signature is over these exact bytes.
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return _refuse(413, f"Body larger than {limit} bytes.", "too_large")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _refuse(400, "Body is not UTF-8.", "not_utf8")
    try:
        Webhook(secret).verify(text, dict(request.headers))
    except (WebhookVerificationError, ValueError) as exc:
        # ValueError: a malformed signature (bad base64).
        return _refuse(400, f"Signature verification failed: {exc}", "bad_signature")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than the parser goes; signed is not the same as sound.
        return _refuse(400, "Body is not valid JSON.", "not_json")
    if not isinstance(body, dict):
        return _refuse(400, "Body is not a JSON object.", "not_object")
    # The ID the signature covers: svix checks `svix-id` first, then `webhook-id`.
    delivery_id = _signature_header(request, "id")
    parsed = parse_event(body)
    if parsed.generated is None and body.get("generatedDate") is not None:
        # Kept: the event names its sync, and the refresh reads the upstream's status;
        # only the hint of when the sync ended is lost (the time of arrival stands in).
        log.warning(
            "webhook %s: generatedDate %r is not a time; stored, timed by its arrival",
            delivery_id[:200],
            str(body.get("generatedDate"))[:100],
        )
    known = parsed.event_type in SYNC_EVENTS and parsed.sync_id and parsed.company_id
    now = timezone.now()
    # One statement: stored once per delivery ID, and never for a purged company.
    stored = db_webhooks.store(
        db_webhooks.NewEvent(
            delivery_id=delivery_id[:200],
            event_type=parsed.event_type,
            body=text,
            received_at=now,
            company_id=parsed.company_id,
            sync_id=parsed.sync_id,
            processed_at=None if known else now,
            error="" if known else "Ignored: not a sync event this dashboard follows.",
        )
    )
    if stored is None:
        if parsed.company_id is not None and ingest.purged_companies([parsed.company_id]):
            # The company's data was erased: nothing of it is stored again, this body included.
            return Answer(
                {"status": "ignored", "id": delivery_id}, outcome="ignored", reason="purged"
            )
        return Answer({"status": "duplicate", "id": delivery_id}, outcome="duplicate")
    if known:
        transaction.on_commit(partial(_enqueue, stored))
    outcome = "accepted" if known else "ignored"
    return Answer({"status": outcome, "id": delivery_id}, outcome=outcome)


def _enqueue(event_pk: int) -> None:
    from .tasks import process_webhook_event_task

    process_webhook_event_task.delay(event_pk)


# --- processing a stored event (the worker's side) ---


def event_to_process(event_pk: int) -> WebhookEvent | None:
    """The stored event, counted as one more attempt, if it still names a sync to refresh."""
    event = WebhookEvent.objects.filter(pk=event_pk).first()
    if event is None or event.processed_at is not None:
        return None
    WebhookEvent.objects.filter(pk=event_pk).update(attempts=event.attempts + 1)
    if event.company_id is None or event.sync_id is None:
        return None
    return event


def process_event(client: Upstream, event: WebhookEvent, *, last_try: bool = False) -> bool:
    """Refresh the one sync a stored event names; safe to run twice.

    An upstream error is recorded on the event and raised for the task to
    retry; a permanent one, or one on the last try, also marks the event
    processed, so it is not picked up again.
    """
    from .retry import settle_for_sync

    body = _body(event)
    generated = body.get("generatedDate") if isinstance(body, dict) else None
    completed_at = (parse_time(generated) if isinstance(generated, str) else None) or (
        event.received_at
    )
    # Polling may have found its sync first: it came late, or in time after all.
    if event.sync_id is not None:
        health_signals.webhook_heard(sync_id=event.sync_id, received_at=event.received_at)
    try:
        ingest.refresh_sync(
            client,
            str(event.company_id),
            str(event.sync_id),
            completed_at=completed_at,
            carried=webhook_items(body),
            learned_by=Learned.WEBHOOK,
        )
        settle_for_sync(str(event.sync_id))
    except ingest.CompanyPurged:
        WebhookEvent.objects.filter(pk=event.pk).update(
            processed_at=timezone.now(), error="Ignored: the company's data was purged."
        )
        return False
    except UpstreamError as exc:
        WebhookEvent.objects.filter(pk=event.pk).update(error=str(exc)[:2000])
        if not exc.retryable or last_try:
            WebhookEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now())
        raise
    done = timezone.now()
    WebhookEvent.objects.filter(pk=event.pk).update(processed_at=done, error="")
    metrics.WEBHOOK_PROCESSING_DELAY.observe(max(0.0, (done - event.received_at).total_seconds()))
    return True


def lost_events(*, older_than_s: int, limit: int, max_attempts: int) -> list[int]:
    """Stored events whose processing never finished (its task was lost, e.g. broker down)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    return list(
        WebhookEvent.objects.filter(
            processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=max_attempts
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


def _body(event: WebhookEvent) -> Any:
    """The stored event's JSON (verified and parsed once already, at intake)."""
    try:
        return json.loads(event.body)
    except (ValueError, RecursionError):
        return None
