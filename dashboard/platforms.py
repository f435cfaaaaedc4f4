"""The accounting platforms of the mirrored companies, for the filters' choices.

Cached: a DISTINCT over every company is a third of a history page's SQL.
Ingest forgets the list when it writes companies; with Redis as the cache
every process sees that at once, with the per-process memory cache (no Redis)
the web process sees it within the timeout. A request that names a platform
the cached list lacks reads the companies again, so a new platform is never
refused; the cache being down costs the query, never the page.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

from .models import Company

log = logging.getLogger(__name__)

PLATFORMS_CACHE_KEY = "dashboard:platform-names"
PLATFORMS_CACHE_SECONDS = 60


def platform_names(*, fresh: bool = False) -> list[str]:
    names = None
    if not fresh:
        try:
            names = cache.get(PLATFORMS_CACHE_KEY)
        except Exception:  # the cache is an optimisation here
            log.warning("platform choices: the cache is unavailable", exc_info=True)
    if names is None:
        names = list(
            Company.objects.exclude(platform_name="")
            .order_by("platform_name")
            .values_list("platform_name", flat=True)
            .distinct()
        )
        try:
            cache.set(PLATFORMS_CACHE_KEY, names, PLATFORMS_CACHE_SECONDS)
        except Exception:
            log.warning("platform choices: the cache is unavailable", exc_info=True)
    return names


def platform_names_with(wanted: object) -> list[str]:
    """The platform names for a filter's choices: read again past the cache when the
    one asked for (`wanted`, from the request) is not among them, as a platform first
    seen since the cache was filled would not be."""
    names = platform_names()
    if wanted and wanted not in names:
        names = platform_names(fresh=True)
    return names


def forget_platform_names() -> None:
    try:
        cache.delete(PLATFORMS_CACHE_KEY)
    except Exception:
        log.warning("platform choices: the cache is unavailable", exc_info=True)
