"""A bulk retry's preview: its candidates frozen as a draft, reviewed, and confirmed.

Opening the preview reads the filter once, in the user's time zone, and
freezes its candidates (original syncs with outstanding items) as the members
of a draft. The person leaves syncs out and confirms; from then on nothing
reads the filter again. A draft enqueues nothing and is seen only by its
author; drafts never confirmed are deleted by the beat follow-up after
`DRAFT_LIFETIME`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, F, Min, Prefetch, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .. import selectors
from ..filters import SyncFilter
from ..models import BulkAlong, BulkMember, BulkRetry, Sync, group_key
from ..problems import lifecycle
from ..vocabulary import BulkState, status_label

# A preview left unconfirmed this long is stale: it can no longer be
# confirmed, and the follow-up deletes it.
DRAFT_LIFETIME = timedelta(days=1)


class BulkRefused(Exception):
    """The bulk retry cannot go ahead as asked; the message says why, for the user."""


class CountMismatch(BulkRefused):
    """The number typed to confirm is not the number of syncs selected."""


def candidates(syncs: QuerySet[Sync]) -> QuerySet[Sync]:
    """Of a filtered sync queryset, the originals with outstanding items.

    A retry is not a candidate of its own: its chain is retried through its
    original, whose request names the sync where each item last failed.
    """
    return syncs.filter(items_outstanding__gt=0, retry_of__isnull=True)


def open_draft(
    *,
    user: User,
    filters: SyncFilter,
    scope: str,
    time_zone: str,
    description: str,
    limit: int,
) -> BulkRetry | None:
    """Freeze the filter's candidates as a draft; None when there is none.

    `filters` was read in the user's zone (`time_zone`); the draft keeps which
    syncs that selected, so nothing later reads the dates again.
    """
    rows = list(
        candidates(selectors.filtered_syncs(filters))
        .order_by("status_code", "error_fingerprint", "-sync_utc", "-pk")
        .values_list("pk", "company_id", "status_code", "error_fingerprint", "items_outstanding")[
            : limit + 1
        ]
    )
    if not rows:
        return None
    if len(rows) > limit:
        raise BulkRefused(
            f"More than {limit:,} syncs in this selection have outstanding items: narrow the "
            "filter (a shorter range, a status code, a company) and retry them in parts."
        )
    with transaction.atomic():
        bulk = BulkRetry.objects.create(
            key=uuid.uuid4(),
            user=user,
            scope=scope,
            time_zone=time_zone,
            description=description,
            state=BulkState.DRAFT,
        )
        BulkMember.objects.bulk_create(
            [
                BulkMember(
                    bulk=bulk,
                    sync_id=pk,
                    company_id=company_pk,
                    status_code=code,
                    fingerprint=fingerprint,
                    items=items,
                )
                for pk, company_pk, code, fingerprint, items in rows
            ],
            batch_size=1000,
        )
    return bulk


@dataclass(frozen=True)
class Totals:
    syncs: int
    items: int
    companies: int


@dataclass(frozen=True)
class Group:
    """The members of one status code and error fingerprint, as the preview froze them."""

    key: str
    status_code: int
    fingerprint: str
    message: str
    syncs: int
    kept: int
    items: int
    companies: int

    @property
    def left_out(self) -> int:
        return self.syncs - self.kept

    @property
    def label(self) -> str:
        return status_label(self.status_code)


def kept_totals(bulk: BulkRetry) -> Totals:
    """What confirming would retry: the members not left out."""
    figures = BulkMember.objects.filter(bulk=bulk, included=True).aggregate(
        syncs=Count("id"), items=Sum("items"), companies=Count("company_id", distinct=True)
    )
    return Totals(**{name: int(value or 0) for name, value in figures.items()})


def groups(bulk: BulkRetry) -> list[Group]:
    """The preview's groups, largest first; the counts are of the members kept."""
    kept = Q(included=True)
    rows = list(
        BulkMember.objects.filter(bulk=bulk)
        .values("status_code", "fingerprint")
        .annotate(
            syncs=Count("id"),
            kept=Count("id", filter=kept),
            items=Sum("items", filter=kept),
            companies=Count("company_id", filter=kept, distinct=True),
            sample=Min("sync_id"),
        )
        .order_by("-syncs", "status_code", "fingerprint")
    )
    # The fingerprint is of the error message, or of the exception message without one.
    messages = {
        pk: error or exception
        for pk, error, exception in Sync.objects.filter(
            pk__in=[row["sample"] for row in rows]
        ).values_list("pk", "error_message", "exception_message")
    }
    return [
        Group(
            key=group_key(row["status_code"], row["fingerprint"]),
            status_code=row["status_code"],
            fingerprint=row["fingerprint"],
            message=messages.get(row["sample"], "") if row["fingerprint"] else "",
            syncs=row["syncs"],
            kept=row["kept"],
            items=int(row["items"] or 0),
            companies=row["companies"],
        )
        for row in rows
    ]


def parse_group_key(raw: str) -> tuple[int, str] | None:
    code, sep, fingerprint = raw.partition(":")
    if not sep or not code.isdecimal() or len(code) > 5 or len(fingerprint) > 64:
        return None
    return int(code), fingerprint


def _with_along(members: QuerySet[BulkMember], bulk: BulkRetry) -> QuerySet[BulkMember]:
    """A problem's members with what goes along in the syncs they name."""
    if bulk.problem_id is None:
        return members
    return members.prefetch_related(
        Prefetch(
            "along",
            queryset=BulkAlong.objects.select_related("sync", "problem").order_by("-items", "pk"),
        )
    )


def group_members(bulk: BulkRetry, status_code: int, fingerprint: str) -> QuerySet[BulkMember]:
    return _with_along(
        BulkMember.objects.filter(bulk=bulk, status_code=status_code, fingerprint=fingerprint)
        .select_related("sync", "company")
        .order_by("pk"),
        bulk,
    )


def samples(bulk: BulkRetry, shown: Iterable[Group], per_group: int) -> dict[str, list[BulkMember]]:
    """The first members of each shown group, in one query (a row number per group)."""
    wanted = Q()
    for group in shown:
        wanted |= Q(status_code=group.status_code, fingerprint=group.fingerprint)
    if not wanted:
        return {}
    ranked: QuerySet[BulkMember] = (
        BulkMember.objects.filter(wanted, bulk=bulk)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("status_code"), F("fingerprint")],
                order_by=F("pk").asc(),
            )
        )
        .filter(rank__lte=per_group)
        .select_related("sync", "company")
        .order_by("pk")
    )
    ranked = _with_along(ranked, bulk)
    found: dict[str, list[BulkMember]] = {}
    for member in ranked:
        found.setdefault(member.group_key, []).append(member)
    return found


def _locked_draft(bulk_pk: int) -> BulkRetry:
    bulk = BulkRetry.objects.select_for_update().get(pk=bulk_pk)
    if bulk.state != BulkState.DRAFT:
        raise BulkRefused("This bulk retry was already confirmed: its syncs can no longer change.")
    return bulk


def choose(
    bulk_pk: int,
    *,
    shown: Iterable[int],
    kept: Iterable[int],
    group: tuple[int, str] | None = None,
    include_group: bool = True,
) -> None:
    """Apply one page of the preview: shown and unticked are left out, ticked kept.

    `group`, when given, then leaves out (or keeps) every member of that group,
    on this page or not.
    """
    shown, kept = set(shown), set(kept) & set(shown)
    with transaction.atomic():
        bulk = _locked_draft(bulk_pk)
        members = BulkMember.objects.filter(bulk=bulk)
        if shown - kept:
            members.filter(pk__in=shown - kept, included=True).update(included=False)
        if kept:
            members.filter(pk__in=kept, included=False).update(included=True)
        if group is not None:
            members.filter(status_code=group[0], fingerprint=group[1]).update(
                included=include_group
            )


def confirm(
    bulk_pk: int, *, expected: int, typed: int | None, threshold: int
) -> tuple[BulkRetry, bool]:
    """Turn a draft into the bulk retry the worker runs. Returns (bulk, confirmed now).

    `expected` is the number of syncs the page showed on its button: if the
    selection holds another number (changed on this page or in another tab),
    nothing is confirmed. Above `threshold` syncs, `typed` must be that
    number. A second submission of the same form finds the bulk confirmed and
    changes nothing.
    """
    with transaction.atomic():
        bulk = BulkRetry.objects.select_for_update().get(pk=bulk_pk)
        if bulk.state != BulkState.DRAFT:
            return bulk, False
        if bulk.created_at < timezone.now() - DRAFT_LIFETIME:
            where = "the problem's page" if bulk.problem_id else "the history"
            raise BulkRefused(
                f"This preview was opened more than a day ago; open a fresh one from {where}."
            )
        totals = kept_totals(bulk)
        if not totals.syncs:
            raise BulkRefused("Every sync is left out: there is nothing to retry.")
        if totals.syncs != expected:
            raise BulkRefused(
                f"The selection now holds {totals.syncs:,} sync{'s' * (totals.syncs != 1)}, "
                f"not {expected:,}: check it, then confirm again."
            )
        if totals.syncs > threshold and typed != totals.syncs:
            raise CountMismatch(
                f"Type the number of syncs, {totals.syncs:,}, to confirm a retry of more than "
                f"{threshold:,}."
                if typed is None
                else f"You typed {typed:,}, but {totals.syncs:,} syncs are selected: type "
                f"{totals.syncs:,} to confirm."
            )
        now = timezone.now()
        BulkRetry.objects.filter(pk=bulk.pk, state=BulkState.DRAFT).update(
            state=BulkState.QUEUED,
            confirmed_at=now,
            planned_syncs=totals.syncs,
            planned_items=totals.items,
            planned_companies=totals.companies,
        )
        if bulk.problem_id is not None:
            lifecycle.retried(
                bulk.problem_id,
                User.objects.get(pk=bulk.user_id),
                bulk_pk=bulk.pk,
                items=totals.items,
                syncs=totals.syncs,
                companies=totals.companies,
            )
        transaction.on_commit(lambda: _enqueue_fan_out(bulk.pk))
    bulk.refresh_from_db()
    return bulk, True


def _enqueue_fan_out(pk: int) -> None:
    from ..tasks import fan_out_bulk_task

    fan_out_bulk_task.delay(pk)


def sweep_drafts(*, limit: int = 100) -> int:
    """Delete previews never confirmed, once too old to confirm; returns how many."""
    stale = list(
        BulkRetry.objects.filter(
            state=BulkState.DRAFT, created_at__lt=timezone.now() - DRAFT_LIFETIME
        ).values_list("pk", flat=True)[:limit]
    )
    if not stale:
        return 0
    with transaction.atomic():
        BulkMember.objects.filter(bulk_id__in=stale).delete()
        BulkRetry.objects.filter(pk__in=stale, state=BulkState.DRAFT).delete()
    return len(stale)
