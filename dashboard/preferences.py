"""Each user's display preferences: the time zone their pages show times in, and when
they last looked at the Problems page."""

from __future__ import annotations

from datetime import datetime

from .models import UserPreference


def for_user(user_id: int) -> UserPreference:
    """The user's preference row, made with the defaults (UTC) the first time."""
    preference, _ = UserPreference.objects.get_or_create(user_id=user_id)
    return preference


def save(preference: UserPreference, *, use_local_time: bool, time_zone: str) -> UserPreference:
    preference.use_local_time = use_local_time
    preference.time_zone = time_zone
    preference.save(update_fields=["use_local_time", "time_zone"])
    return preference


def active_zone(user_id: int) -> str:
    """The zone this user sees times in: their local zone if they chose it, else UTC."""
    preference = UserPreference.objects.filter(user_id=user_id).first()
    return preference.active_zone if preference is not None else "UTC"


def problems_seen(preference: UserPreference, at: datetime) -> None:
    """They opened the Problems page at `at`: what is new or regressed is counted from it."""
    preference.problems_seen_at = at
    preference.save(update_fields=["problems_seen_at"])
