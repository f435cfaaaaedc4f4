"""Render the pages of a checkout to files, and compare two such renders.

Run from the root of the checkout whose code should render (its packages are
imported from the current directory), against any database that holds data,
for example the UI benchmark's (`python -m bench ui` loads it):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/synchealth_bench_ui \
        python scripts/compare_pages.py render /tmp/pages-after
    (cd ../old-checkout && DATABASE_URL=… python ../new/scripts/compare_pages.py \
        render /tmp/pages-before)
    python scripts/compare_pages.py diff /tmp/pages-before /tmp/pages-after

Render the two checkouts one after the other with nothing writing to the
database in between (beat, a benchmark): the dashboard reads the rankings
snapshot as it finds it. `render` pins the clock to one moment (the newest
sync's start plus an hour, or `--now`), so two renders of the same database
read the same ranges. It renders the dashboard, the history (filters, sorts,
a second page), the sync detail's tabs for a failed, a running and a
successful sync, a company page, the retries list and the CSV export's first
lines, as a superuser.

`diff` compares file by file after removing what differs by design: CSRF
tokens, the confirmation forms' one-time keys, and the class names that the
status vocabulary renamed (`cat-0` → `cat-in-progress`, `item-4` →
`item-push-error`, …). It exits 1 if
any page differs.
"""

from __future__ import annotations

import argparse
import difflib
import html
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

# Class names from before the status vocabulary, and what they are called now.
RENAMED = {
    "cat-0": "cat-in-progress",
    "cat-1": "cat-success",
    "cat-2": "cat-failed",
    "item-0": "item-unknown",
    "item-1": "item-pending",
    "item-2": "item-validation-error",
    "item-3": "item-completed",
    "item-4": "item-push-error",
    "item-5": "item-failed",
}
# The history's link to its next page.
NEXT_PAGE = re.compile(r'<a rel="next" href="([^"]+)"')
# Values made afresh for each render: CSRF tokens and the confirmation forms' keys.
FRESH = re.compile(r'(name="csrfmiddlewaretoken" value=|"X-CSRFToken": ?|name="key" value=)"[^"]*"')


def _setup(database_url: str | None) -> None:
    sys.path.insert(0, os.getcwd())
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SYNCHEALTH_ALLOW_INSECURE_SECRET", "1")
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synchealth.settings")
    import django

    django.setup()


def _pages() -> list[tuple[str, str]]:
    """(file name, URL) of every page to render, chosen from the data."""
    from django.urls import reverse

    from dashboard.models import Company, Sync

    history = reverse("sync-history")
    pages = [
        ("dashboard-7d", reverse("summary")),
        ("dashboard-24h", reverse("summary") + "?range=24h"),
        ("dashboard-30d", reverse("summary") + "?range=30d"),
        ("dashboard-all", reverse("summary") + "?range=all"),
        ("dashboard-failed", reverse("summary") + "?range=30d&category=failed"),
        ("history", history),
        ("history-failed", history + "?category=failed"),
        ("history-5130", history + "?code=5130&code=4000"),
        ("history-failed-items", history + "?failed_items=on&range=30d"),
        ("history-sort-company", history + "?sort=company&dir=asc"),
        ("history-sort-status", history + "?sort=status"),
        ("history-sort-duration-asc", history + "?sort=duration&dir=asc"),
        ("history-sort-items", history + "?sort=items&range=90d"),
        ("history-search-name", history + "?q=a&range=all"),
        ("history-bad-filter", history + "?start=2026-02-01&end=2026-01-01"),
        ("history-partial", history + "?category=failed&range=30d"),
        ("retries", reverse("retry-audit")),
    ]
    platform = (
        Company.objects.exclude(platform_name="").values_list("platform_name", flat=True).first()
    )
    if platform:
        pages.append(("dashboard-platform", reverse("summary") + f"?platform={platform}"))
        pages.append(("history-platform", history + f"?platform={platform}&range=30d"))
    samples = {
        "failed": Sync.objects.filter(items_failed__gt=0).order_by("-sync_utc", "-id").first(),
        "running": Sync.objects.filter(status_code__in=(1000, 1010)).order_by("-id").first(),
        "success": Sync.objects.filter(status_code=2000).order_by("-sync_utc", "-id").first(),
        "retry": Sync.objects.filter(retry_of__isnull=False).order_by("-id").first(),
    }
    for name, sync in samples.items():
        if sync is None:
            continue
        detail = reverse("sync-detail", args=[sync.sync_id])
        pages += [
            (f"sync-{name}", detail),
            (f"sync-{name}-items", detail + "?tab=items"),
            (f"sync-{name}-items-failed", detail + "?tab=items&status=failed"),
            (f"sync-{name}-config", detail + "?tab=config"),
        ]
        if name == "failed":
            pages.append(("sync-failed-retry", reverse("sync-retry", args=[sync.sync_id])))
            pages.append(("company", reverse("company-detail", args=[sync.company.company_id])))
            pages.append(("history-company", history + f"?company={sync.company.company_id}"))
            pages.append(("history-search-sync", history + f"?q={sync.sync_id}&range=all"))
    pages.append(("bulk-preview", reverse("bulk-retry") + "?range=24h&code=5130"))
    pages.append(("history-csv", reverse("sync-history-csv") + "?range=24h"))
    return pages


def render(out: Path, now: str | None, username: str | None = None) -> int:
    import time_machine
    from django.contrib.auth import get_user_model
    from django.test import Client

    from dashboard.models import Sync

    if now:
        moment = datetime.fromisoformat(now)
    else:
        newest = Sync.objects.order_by("-sync_utc").values_list("sync_utc", flat=True).first()
        if newest is None:
            print("the database holds no syncs")
            return 2
        moment = newest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    out.mkdir(parents=True, exist_ok=True)
    user_model = get_user_model()
    if username:
        user = user_model.objects.get(username=username)
    else:
        user = user_model.objects.filter(is_superuser=True, username="pages-compare").first()
        if user is None:
            user = user_model.objects.create_superuser("pages-compare", password=None)
    with time_machine.travel(moment, tick=False):
        client = Client()
        client.force_login(user)
        pages = _pages()
        for name, url in pages:
            # Opening a bulk retry's preview freezes it and redirects to its review.
            response = client.get(url, follow=name == "bulk-preview")
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if name == "history-csv":
                body = b"\n".join(body.splitlines()[:200])
            (out / f"{name}.html").write_bytes(f"{response.status_code} {url}\n".encode() + body)
            first = name.startswith("history") and not name.endswith("-next")
            following = NEXT_PAGE.search(body.decode()) if first else None
            if following:
                pages.append((f"{name}-next", url.split("?")[0] + html.unescape(following[1])))
    print(f"rendered {len(pages)} pages at {moment.isoformat()} into {out}")
    return 0


def _normalised(text: str) -> list[str]:
    text = FRESH.sub(r'\1"…"', text)
    for old, new in RENAMED.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text.splitlines()


def diff(before: Path, after: Path) -> int:
    names = sorted({p.name for p in before.glob("*.html")} | {p.name for p in after.glob("*.html")})
    differing = 0
    for name in names:
        old, new = before / name, after / name
        if not old.exists() or not new.exists():
            print(f"{name}: only in {'after' if new.exists() else 'before'}")
            differing += 1
            continue
        lines = list(
            difflib.unified_diff(
                _normalised(old.read_text()),
                _normalised(new.read_text()),
                f"before/{name}",
                f"after/{name}",
                lineterm="",
            )
        )
        if lines:
            differing += 1
            print("\n".join(lines[:80]))
    print(f"{len(names)} pages compared, {differing} differ")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    render_cmd = sub.add_parser("render", help="render this checkout's pages into a folder")
    render_cmd.add_argument("out", type=Path)
    render_cmd.add_argument("--now", help="the pinned moment (ISO 8601; default: from the data)")
    render_cmd.add_argument("--database-url", help="default: DATABASE_URL")
    render_cmd.add_argument("--user", help="render as this user (default: a superuser)")
    diff_cmd = sub.add_parser("diff", help="compare two renders")
    diff_cmd.add_argument("before", type=Path)
    diff_cmd.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "diff":
        return diff(args.before, args.after)
    _setup(args.database_url)
    return render(args.out, args.now, args.user)


if __name__ == "__main__":
    sys.exit(main())
