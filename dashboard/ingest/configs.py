"""Sync configurations: a snapshot kept each time a company's config changes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Company, ConfigSnapshot, RefreshState, Sync
from ..vocabulary import Code

CONFIG_MAX_AGE = timedelta(days=1)


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def store_config(company: Company, config: dict[str, Any]) -> bool:
    """Keep a new snapshot when the config differs from the latest one."""
    digest = config_digest(config)
    now = timezone.now()
    with transaction.atomic():
        # Serialise writers for this company, so two refreshes add one snapshot.
        RefreshState.objects.select_for_update().filter(company=company).update(
            config_fetched_at=now
        )
        latest = (
            ConfigSnapshot.objects.filter(company=company).order_by("-fetched_at", "-pk").first()
        )
        if latest is not None and latest.digest == digest:
            return False
        ConfigSnapshot.objects.create(company=company, fetched_at=now, digest=digest, config=config)
        return True


def needs_config(state: RefreshState, syncs: list[Sync], now: datetime) -> bool:
    if state.config_fetched_at is None or state.config_fetched_at < now - CONFIG_MAX_AGE:
        return True
    return any(s.status_code == Code.CONFIGURATION_ERROR for s in syncs)
