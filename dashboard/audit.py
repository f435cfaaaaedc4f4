"""The access audit: who signed in (or failed to), who was refused, who carried data away.

Retry requests keep their own audit (`dashboard.retry`); this one records
what leaves no other trace: sign-ins, failed sign-ins, lockouts and
sign-outs (from Django's and axes' signals, connected in `connect`), CSV
exports with their filter and the rows actually sent, config downloads, and
every permission denial (`dashboard.access.permission_denied`).

Nothing secret goes in: no password, no token, no query string of the
sign-in pages (a single sign-on callback's carries an authorisation code).
Rows are only added here, read by the audit page, and pruned by age
(`prune`, which retention calls).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.http import HttpRequest

from accounts.clientip import client_ip
from accounts.sessions import ending

from . import cursors
from .models import AccessEvent, ConfigSnapshot
from .roles import RoleRequired
from .vocabulary import AccessAction

PAGE_SIZE = 50
# Bounds on what a request can make us store.
PATH_MAX = 500
FILTER_MAX = 2000
USERNAME_MAX = 150
NAME_MAX = 500
SINGLE_SIGN_ON_BACKEND = "accounts.oidc.SingleSignOnBackend"


def record(
    action: AccessAction,
    *,
    request: HttpRequest | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    username: str = "",
    path: str | None = None,
    client_address: str | None = None,
    company_id: uuid.UUID | None = None,
    company_name: str = "",
    detail: dict[str, Any] | None = None,
) -> AccessEvent:
    """Add one row to the audit. Where from (path, address) defaults to the request's.

    `user` is who is signed in (None for nobody: a failed sign-in, whose
    request may even carry someone else's session); `username` names someone
    who is not, as typed.
    """
    if user is not None and not user.is_authenticated:
        user = None
    if user is not None and not username:
        username = user.get_username()
    if request is not None:
        path = request.path if path is None else path
        client_address = client_address or client_ip(request)
    return AccessEvent.objects.create(
        action=action,
        user_id=user.pk if user is not None else None,
        username=username[:USERNAME_MAX],
        client_ip=client_address,
        path=(path or "")[:PATH_MAX],
        company_id=company_id,
        company_name=company_name[:NAME_MAX],
        detail=detail or {},
    )


# --- signing in and out (signal receivers) ---


def on_login(sender: object, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    backend = getattr(user, "backend", "")
    method = "single sign-on" if backend == SINGLE_SIGN_ON_BACKEND else "password"
    record(AccessAction.LOGIN, request=request, user=user, detail={"method": method})


def on_login_failed(
    sender: object,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: object,
) -> None:
    """A refused sign-in, by the name typed (Django has already masked the password)."""
    username = credentials.get("username")
    record(
        AccessAction.LOGIN_FAILED,
        request=request,
        username=username if isinstance(username, str) else "",
    )


def on_lockout(
    sender: object,
    request: HttpRequest,
    username: str | None,
    ip_address: str | None,
    **kwargs: object,
) -> None:
    """axes' `user_locked_out`: the attempt that reached the limit, and each one during the
    lockout (each starts the wait again)."""
    failures = getattr(request, "axes_failures_since_start", None)
    record(
        AccessAction.LOCKOUT,
        request=request,
        username=username or "",
        client_address=ip_address,
        detail={"failures": failures} if isinstance(failures, int) else {},
    )


def on_logout(sender: object, request: HttpRequest | None, user: Any, **kwargs: object) -> None:
    if user is None:
        return
    session = getattr(request, "session", None)
    timed_out = session is not None and ending(session, int(time.time())) is not None
    record(AccessAction.LOGOUT, request=request, user=user, detail={"timed_out": timed_out})


def connect() -> None:
    """Listen to the sign-in signals (`DashboardConfig.ready`)."""
    user_logged_in.connect(on_login, dispatch_uid="dashboard.audit.login")
    user_login_failed.connect(on_login_failed, dispatch_uid="dashboard.audit.login_failed")
    user_logged_out.connect(on_logout, dispatch_uid="dashboard.audit.logout")
    user_locked_out.connect(on_lockout, dispatch_uid="dashboard.audit.lockout")


# --- reads that carry data away, and refusals ---


def export_started(request: HttpRequest, *, query: str) -> AccessEvent:
    """A CSV export begins: recorded before the first row, so an export whose
    stream never starts (or whose process dies) still leaves its trace."""
    detail = {"filter": query[:FILTER_MAX], "rows": 0, "finished": False}
    return record(AccessAction.CSV_EXPORT, request=request, user=request.user, detail=detail)


def export_ended(event: AccessEvent, *, rows: int, finished: bool) -> None:
    """How many rows went, and whether the stream ran to its end or was cut short."""
    detail = {**event.detail, "rows": rows, "finished": finished}
    AccessEvent.objects.filter(pk=event.pk).update(detail=detail)


def config_downloaded(request: HttpRequest, snapshot: ConfigSnapshot) -> AccessEvent:
    company = snapshot.company
    return record(
        AccessAction.CONFIG_DOWNLOAD,
        request=request,
        user=request.user,
        company_id=company.company_id,
        company_name=company.name,
        detail={"snapshot": snapshot.pk, "fetched_at": snapshot.fetched_at.isoformat()},
    )


def denied(request: HttpRequest, exception: Exception) -> AccessEvent:
    """A 403: the page asked for (with its query: a filter says what was wanted) and,
    when the refusal names it, the role lacking."""
    detail = {}
    if isinstance(exception, RoleRequired):
        detail = {"role": exception.role, "action": exception.action}
    return record(
        AccessAction.PERMISSION_DENIED,
        request=request,
        user=request.user,
        path=request.get_full_path(),
        detail=detail,
    )


# --- the audit page's read, and pruning ---


@dataclass(frozen=True)
class AccessFilter:
    """What the audit page shows: an action, a user, a time range, and the page's cursor."""

    action: str = ""
    username: str = ""
    start: datetime | None = None
    end: datetime | None = None
    # (at, pk) of the last row of the page before.
    after: tuple[datetime, int] | None = None


@dataclass(frozen=True)
class AccessPage:
    events: list[AccessEvent]
    # The cursor of the next (older) page, if there is one.
    next_after: tuple[datetime, int] | None


def events(filters: AccessFilter, size: int = PAGE_SIZE) -> AccessPage:
    """One page of the audit, newest first: a keyset read, never a count or an offset."""
    rows = AccessEvent.objects.all()
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.username:
        rows = rows.filter(username=filters.username)
    if filters.start is not None:
        rows = rows.filter(at__gte=filters.start)
    if filters.end is not None:
        rows = rows.filter(at__lt=filters.end)
    if filters.after is not None:
        at, pk = filters.after
        rows = rows.filter(cursors.after("at", True, at, pk))
    found = list(rows.order_by("-at", "-pk")[: size + 1])
    if len(found) <= size:
        return AccessPage(found, None)
    last = found[size - 1]
    return AccessPage(found[:size], (last.at, last.pk))


def prune(before: datetime, batch: int = 1000) -> int:
    """Delete the rows older than `before`, `batch` at a time; how many were deleted.

    Short statements, each its own transaction under autocommit, so that
    pruning a year of rows never holds a long lock on a table every sign-in
    writes to.
    """
    deleted = 0
    while removed := prune_batch(before, batch):
        deleted += removed
    return deleted


def prune_batch(before: datetime, batch: int) -> int:
    """Delete the oldest `batch` rows older than `before`; how many (0: none left)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    ids = list(
        AccessEvent.objects.filter(at__lt=before)
        .order_by("at", "pk")
        .values_list("pk", flat=True)[:batch]
    )
    if not ids:
        return 0
    count, _ = AccessEvent.objects.filter(pk__in=ids).delete()
    return count


def count(before: datetime) -> int:
    """How many rows `prune(before)` would delete (retention's dry run)."""
    return AccessEvent.objects.filter(at__lt=before).count()
