"""Build the problems of an existing estate, in batches, and re-point aliases after the
normaliser changes (`manage.py build_problems`).

Ingest keeps problems up to date from the moment this code runs; an estate
mirrored before has outstanding transactions without a problem, and
fingerprints made by an older normaliser. For each company, in its own
transaction under its current-state lock, the backfill:

1. fingerprints its failed items and failed syncs again where the normaliser
   now says otherwise;
2. recomputes its outstanding transactions (`dashboard.ingest.state.recompute`,
   the same code ingest runs), which gives each its problem and recounts the
   company's shares;
3. recounts its failing streak, which gives its failed syncs without items
   their problem.

So the backfill ends with exactly the problems that ingest would have built
(`tests/mirror/test_problems.py` proves it on a sandbox estate). Running it
again changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction

from ..db import chunked
from ..db.maintenance import analyze
from ..fingerprint import fingerprint
from ..models import Company, ProblemCompany, PushItem, Sync, TransactionState
from ..vocabulary import FAILED_ITEM_STATUSES, ItemStatus

FAILED = [int(s) for s in FAILED_ITEM_STATUSES]
BATCH = 1000
# The statistics of the tables it rewrites are refreshed this often (companies).
ANALYZE_EVERY = 500


@dataclass
class Built:
    companies: int = 0
    items_fingerprinted: int = 0
    syncs_fingerprinted: int = 0
    transactions: int = 0
    aliases_added: int = 0


def refingerprint(company_pk: int) -> tuple[int, int]:
    """Fingerprint the company's failed items and failed syncs again; (items, syncs) changed."""
    items: dict[str, list[int]] = defaultdict(list)
    rows = (
        PushItem.objects.filter(sync__company_id=company_pk)
        .exclude(status=ItemStatus.COMPLETED)
        .exclude(message=None)
        .values_list("pk", "message", "fingerprint")
    )
    for pk, message, old in rows.iterator(chunk_size=BATCH):
        new = fingerprint(message)
        if new != old:
            items[new].append(pk)
    syncs: dict[str, list[int]] = defaultdict(list)
    for pk, message, exception, old in (
        Sync.objects.filter(company_id=company_pk)
        .exclude(error_message="", exception_message="")
        .values_list("pk", "error_message", "exception_message", "error_fingerprint")
        .iterator(chunk_size=BATCH)
    ):
        new = fingerprint(message or exception)
        if new != old:
            syncs[new].append(pk)
    # A company's failures have a few causes: one UPDATE per new fingerprint
    # costs less than bulk_update's CASE of a branch per row.
    for new, pks in items.items():
        for chunk in chunked(pks, BATCH):
            PushItem.objects.filter(pk__in=chunk).update(fingerprint=new)
    for new, pks in syncs.items():
        for chunk in chunked(pks, BATCH):
            Sync.objects.filter(pk__in=chunk).update(error_fingerprint=new)
    return sum(map(len, items.values())), sum(map(len, syncs.values()))


def build_company(company_pk: int) -> tuple[int, int, int]:
    """One company's problems from its rows; (items, syncs fingerprinted again, transactions)."""
    from ..ingest.refresh import update_streak
    from ..ingest.state import lock_companies, recompute

    with transaction.atomic():
        lock_companies([company_pk])
        items, syncs = refingerprint(company_pk)
        # Syncs without items lose a problem made from an older fingerprint.
        Sync.objects.filter(company_id=company_pk, problem__isnull=False, items_total=0).update(
            problem=None
        )
        open_ids = list(
            TransactionState.objects.filter(company_id=company_pk, outstanding=True).values_list(
                "transaction_id", flat=True
            )
        )
        if open_ids:
            recompute(company_pk, open_ids)
        update_streak(Company.objects.get(pk=company_pk))
    return items, syncs, len(open_ids)


def build(
    company_pks: Iterable[int] | None = None, progress: Callable[[Built], None] | None = None
) -> Built:
    """Every company's problems (or these companies'), one company per transaction."""
    built = Built(aliases_added=realias())
    pks = (
        list(company_pks)
        if company_pks is not None
        else list(Company.objects.order_by("pk").values_list("pk", flat=True))
    )
    for pk in pks:
        items, syncs, transactions = build_company(pk)
        built.companies += 1
        built.items_fingerprinted += items
        built.syncs_fingerprinted += syncs
        built.transactions += transactions
        if built.companies % ANALYZE_EVERY == 0:
            # The rows it gives a problem had none when the statistics were taken.
            analyze(TransactionState)
            analyze(ProblemCompany)
        if progress is not None and built.companies % 100 == 0:
            progress(built)
    return built


def realias() -> int:
    """Give every problem the fingerprint today's normaliser makes of its aliases' examples.

    After an improvement to the normaliser, the same cause has a new
    fingerprint: the new alias points at the problem the old one named, so
    its assignee, notes, playbook and history stay. Two problems that the
    normaliser now says are one are merged (the older one stays).
    """
    from ..models import ProblemAlias
    from . import lifecycle

    added = 0
    for alias in ProblemAlias.objects.select_related("problem").order_by("problem_id", "pk"):
        if not alias.example:
            continue
        new = fingerprint(alias.example)
        if new == alias.fingerprint:
            continue
        found = ProblemAlias.objects.filter(
            status_code=alias.status_code, data_type=alias.data_type, fingerprint=new
        ).first()
        problem = alias.problem.merged_into_id or alias.problem_id
        if found is None:
            ProblemAlias.objects.create(
                problem_id=problem,
                status_code=alias.status_code,
                data_type=alias.data_type,
                fingerprint=new,
                example=alias.example,
            )
            added += 1
        else:
            other = found.problem.merged_into_id or found.problem_id
            if other != problem:
                keep, gone = sorted([problem, other])
                lifecycle.merge(gone, keep, None)
    return added
