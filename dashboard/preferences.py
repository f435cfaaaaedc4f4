"""Each user's display preferences: the time zone their pages show times in, their colours
(light, dark, or as their system says), and when they last looked at the pages that mark what
is new (the Problems page; the dashboard and the history)."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .models import Theme, UserPreference

# The pages that mark what is new compare with the look before this visit: a
# visit is a run of looks (filters, next pages) less than this apart.
VISIT_GAP = timedelta(minutes=30)
# Looks this close to the one written down are the same look: no write (a row
# and the session, two commits) for every filter or page of one visit.
LOOK_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Looked:
    """A page (or pages) whose looks are remembered: the preference's field, the session's key."""

    field: str
    session_key: str
    # Pages opened often (and followed by their links): a look this soon after the
    # session's last one is the same visit, told by the session alone (no read, no
    # write); the field then lags the latest look by at most this much.
    recheck: timedelta | None = None


# The Problems page: what is new or regressed since.
PROBLEMS = Looked("problems_seen_at", "sync_health_problems_look")
# The dashboard and the history, together: which syncs arrived since.
SYNCS = Looked("syncs_seen_at", "sync_health_syncs_look", recheck=timedelta(minutes=1))


def for_user(user_id: int) -> UserPreference:
    """The user's preference row, made with the defaults (UTC) the first time."""
    preference, _ = UserPreference.objects.get_or_create(user_id=user_id)
    return preference


def save(preference: UserPreference, *, use_local_time: bool, time_zone: str) -> UserPreference:
    preference.use_local_time = use_local_time
    preference.time_zone = time_zone
    preference.save(update_fields=["use_local_time", "time_zone"])
    return preference


def save_theme(preference: UserPreference, theme: str) -> UserPreference:
    preference.theme = Theme(theme)
    preference.save(update_fields=["theme"])
    return preference


def active_zone(user_id: int) -> str:
    """The zone this user sees times in: their local zone if they chose it, else UTC."""
    return display(user_id)[0]


def display(user_id: int) -> tuple[str, str]:
    """How this user's pages show: the time zone (as `active_zone`) and the theme (a `Theme`
    value), read in one query; UTC and the system's colours before they chose anything."""
    preference = UserPreference.objects.filter(user_id=user_id).first()
    if preference is None:
        return "UTC", Theme.SYSTEM.value
    return preference.active_zone, str(preference.theme)


def last_look(
    session: MutableMapping[str, Any], user_id: int, looked: Looked, *, mark: bool
) -> datetime | None:
    """When the user looked at these pages before this visit (None: never).

    The preference's field holds their latest look; the session remembers the
    look before it for as long as the visit lasts, so the visit's next pages
    still say what was new when it began. `mark`: this request is a look.
    """
    kept = session.get(looked.session_key)
    now = timezone.now()
    if looked.recheck is not None and isinstance(kept, dict):
        recent = _moment(kept.get("latest"))
        if recent is not None and timedelta(0) <= now - recent < looked.recheck:
            return _moment(kept.get("before"))
    preference = for_user(user_id)
    latest: datetime | None = getattr(preference, looked.field)
    before = latest
    kept_latest = (
        isinstance(kept, dict) and latest is not None and kept.get("latest") == latest.isoformat()
    )
    if kept_latest and now - latest < VISIT_GAP:  # type: ignore[operator]
        before = _moment(kept.get("before"))  # type: ignore[union-attr]
    if mark and kept_latest and now - latest < LOOK_RESOLUTION:  # type: ignore[operator]
        # The same look: the time written a moment ago stands, the session too.
        return before
    if mark:
        setattr(preference, looked.field, now)
        preference.save(update_fields=[looked.field])
        session[looked.session_key] = {
            "before": before.isoformat() if before else None,
            "latest": now.isoformat(),
        }
    return before


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
