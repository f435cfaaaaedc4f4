"""A deployment of the previous release, with a few thousand syncs, for the upgrade test.

There are no release tags: the previous release is the last commit before
the current state (5b0a7fa, the "before" of docs/benchmarks.md and its
ingest benchmark's database): the dashboard's migrations up to 0015, the
sandbox's first, Django's and django-celery-beat's, and no sign-in apps
(axes, accounts) yet. `install` migrates an empty database to exactly that;
`populate` writes a history through that release's own models (the
migration state, not today's code), in a shape whose current state is known
without computing it:

- 25 companies of 120 original syncs an hour apart; every fifth company is
  healthy (every sync 2000, three items completed);
- in the others, every tenth sync fails (5130: two items PushError, two
  completed) and every tenth from the fifth is a configuration error (4000,
  no items); five a company are still running (1000, two items pending);
- of the six failed syncs that end in 0 (modulo 20), a retry half an hour
  later completes both failed items: the original is resolved; of those that
  end in 10, 50 and 90, a retry fails both again; 30, 70 and 110 are not
  retried. So each failing company has 6 originals and 12 items outstanding.

Run as `python -m tests.support.previous_release` with DATABASE_URL set: it
installs, populates, and prints what the upgraded pages must show as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

RELEASE = {"dashboard": "0015_bulk_retry_state_choices", "sandbox": "0001_initial"}
# Apps the release had, at their migrations of today (their versions are unchanged).
ALONGSIDE = ("admin", "auth", "contenttypes", "sessions", "django_celery_beat")

COMPANIES = 25
SYNCS_PER_COMPANY = 120
T0 = datetime(2026, 11, 1, tzinfo=UTC)
COMPLETED, PUSH_ERROR, PENDING = 3, 4, 1  # the release's item statuses
SUCCESS, FAILED, IN_PROGRESS = 1, 2, 0  # and its categories
MESSAGE = "Tax rate with id '{n}7' was not found in the company's mapping options."


def install(connection) -> Any:
    """Migrate the empty database of `connection` to the previous release; its models."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] in ALONGSIDE] + list(
        RELEASE.items()
    )
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def populate(apps) -> dict[str, Any]:
    """The history, and what the dashboard must count once it is upgraded."""
    from django.contrib.auth.hashers import make_password

    from dashboard.fingerprint import fingerprint

    company_model = apps.get_model("dashboard", "Company")
    sync_model = apps.get_model("dashboard", "Sync")
    item_model = apps.get_model("dashboard", "PushItem")
    user_model = apps.get_model("auth", "User")
    group_model = apps.get_model("auth", "Group")

    viewer = user_model.objects.create(username="viewer", password=make_password(None))
    viewer.groups.add(group_model.objects.get(name="Support viewer"))

    platforms = ["Xero", "QuickBooks Online", "Oracle NetSuite", "Sage Intacct", "FreeAgent"]
    companies = company_model.objects.bulk_create(
        company_model(
            company_id=uuid.uuid4(), name=f"Upgrade Co {c:02d}", platform_name=platforms[c % 5]
        )
        for c in range(COMPANIES)
    )
    syncs, items, retries = [], [], []
    expected: dict[str, Any] = {"outstanding_items": 0, "outstanding_syncs": 0}
    failing = set()
    for c, company in enumerate(companies):
        healthy = c % 5 == 4
        for i in range(SYNCS_PER_COMPANY):
            started = T0 + timedelta(hours=i, minutes=c)
            code = 2000
            if not healthy and i % 10 == 0:
                code = 5130
            elif not healthy and i % 10 == 5:
                code = 4000
            elif i % 25 == 1:
                code = 1000
            sync = sync_model(
                sync_id=uuid.uuid4(),
                company=company,
                status_code=code,
                sync_utc=started,
                category={2000: SUCCESS, 1000: IN_PROGRESS}.get(code, FAILED),
                platform_name=company.platform_name,
                data_pushed=code == 2000,
            )
            if code != 1000:
                sync.completed_at = started + timedelta(minutes=2)
                sync.duration_s = 120
            if code in (5130, 4000):
                sync.error_message = MESSAGE.format(n=c)
                sync.error_fingerprint = fingerprint(sync.error_message)
            pushes = {
                2000: [COMPLETED] * 3,
                5130: [PUSH_ERROR, PUSH_ERROR, COMPLETED, COMPLETED],
                1000: [PENDING, PENDING],
                4000: [],
            }[code]
            tids = [uuid.uuid4() for _ in pushes]
            syncs.append(sync)
            items.append((sync, list(zip(tids, pushes, strict=True))))
            if code == 5130:
                failing.add(company.pk)
                retry = None
                if i % 20 == 0:
                    retry = (sync, 2000, COMPLETED)
                    expected.setdefault("resolved", str(sync.sync_id))
                elif i % 40 == 10:
                    retry = (sync, 5130, PUSH_ERROR)
                    expected.setdefault("failed_again", str(sync.sync_id))
                    expected["outstanding_items"] += 2
                    expected["outstanding_syncs"] += 1
                else:
                    expected.setdefault("not_retried", str(sync.sync_id))
                    expected["outstanding_items"] += 2
                    expected["outstanding_syncs"] += 1
                if retry:
                    retries.append((retry, tids[:2]))
    sync_model.objects.bulk_create(syncs)

    retry_syncs = []
    for (original, code, status), tids in retries:
        retry = sync_model(
            sync_id=uuid.uuid4(),
            company=original.company,
            status_code=code,
            sync_utc=original.sync_utc + timedelta(minutes=30),
            completed_at=original.sync_utc + timedelta(minutes=32),
            duration_s=120,
            category=SUCCESS if code == 2000 else FAILED,
            platform_name=original.platform_name,
            data_pushed=code == 2000,
            retry_of=original,
        )
        if code == 5130:
            retry.error_message = original.error_message
            retry.error_fingerprint = original.error_fingerprint
        retry_syncs.append(retry)
        items.append((retry, [(tid, status) for tid in tids]))
    sync_model.objects.bulk_create(retry_syncs)

    rows = []
    for sync, pushed in items:
        for tid, status in pushed:
            message = sync.error_message if status == PUSH_ERROR else None
            rows.append(
                item_model(
                    sync=sync,
                    transaction_id=tid,
                    status=status,
                    message=message,
                    data_type="directCosts" if status != PENDING else "",
                    fingerprint=fingerprint(message) if message else "",
                )
            )
        sync.items_total = len(pushed)
        sync.items_completed = sum(1 for _, s in pushed if s == COMPLETED)
        sync.items_failed = sum(1 for _, s in pushed if s == PUSH_ERROR)
        sync.items_pending = sum(1 for _, s in pushed if s == PENDING)
    item_model.objects.bulk_create(rows, batch_size=5000)
    sync_model.objects.bulk_update(
        [sync for sync, _ in items],
        ["items_total", "items_completed", "items_failed", "items_pending"],
        batch_size=2000,
    )
    expected.update(
        syncs=len(syncs) + len(retry_syncs),
        items=len(rows),
        outstanding_companies=len(failing),
        running=str(next(s.sync_id for s in syncs if s.status_code == 1000)),
    )
    return expected


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")
    import django

    django.setup()
    from django.db import connection

    apps = install(connection)
    print(json.dumps(populate(apps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
