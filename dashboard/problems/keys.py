"""Which problem a failure belongs to: its key, and the problem the key is an alias of."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..fingerprint import normalise
from ..models import Problem, ProblemActivity, ProblemAlias
from ..vocabulary import ProblemEvent, ProblemState

# (status code, data type, fingerprint of the normalised message)
Key = tuple[int, str, str]


def key(status_code: int, data_type: str, item_fingerprint: str, sync_fingerprint: str) -> Key:
    """An item's key: its own message's fingerprint, or its sync's when it has none."""
    return (int(status_code), data_type or "", item_fingerprint or sync_fingerprint or "")


def problems_for(
    keys: Iterable[Key],
    example: Callable[[Key], str],
    seen: dict[Key, datetime] | None = None,
) -> dict[Key, int]:
    """The problem of each key; a key never seen makes a problem, from `example(key)`.

    `seen`: when each key's failure started, for a new problem's first and last seen.
    Safe with two workers at once: the alias's unique key decides which problem wins.
    """
    wanted = set(keys)
    if not wanted:
        return {}
    found = _lookup(wanted)
    for missing in sorted(wanted - found.keys()):
        found[missing] = _create(missing, example(missing), (seen or {}).get(missing))
    return found


def known(keys: set[Key]) -> dict[Key, int]:
    """The problem of each of these keys that has one (merged ones: where they went).

    For the pages: a key never seen makes nothing here.
    """
    return _lookup(keys) if keys else {}


def _lookup(keys: set[Key]) -> dict[Key, int]:
    found: dict[Key, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        # The aliases of these codes and fingerprints, then exactly these keys: two
        # IN lists cost less to build than an OR of a condition per key.
        for code, data_type, fingerprint, problem, merged_into in ProblemAlias.objects.filter(
            status_code__in={k[0] for k in chunk}, fingerprint__in={k[2] for k in chunk}
        ).values_list(
            "status_code", "data_type", "fingerprint", "problem_id", "problem__merged_into_id"
        ):
            if (code, data_type, fingerprint) in keys:
                found[(code, data_type, fingerprint)] = merged_into or problem
    return found


def _create(key: Key, example: str, seen: datetime | None) -> int:
    code, data_type, fingerprint = key
    when = seen or timezone.now()
    try:
        with transaction.atomic():
            problem = Problem.objects.create(
                status_code=code,
                data_type=data_type,
                cause=normalise(example) or "(no message)",
                example=example[:4000],
                state=ProblemState.OPEN,
                first_seen=when,
                last_seen=when,
            )
            ProblemAlias.objects.create(
                problem=problem,
                status_code=code,
                data_type=data_type,
                fingerprint=fingerprint,
                example=example[:4000],
            )
            ProblemActivity.objects.create(problem=problem, event=ProblemEvent.CREATED)
    except IntegrityError:
        # Another worker made it first: use theirs.
        return _lookup({key})[key]
    return problem.pk
