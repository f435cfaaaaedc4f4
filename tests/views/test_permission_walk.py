"""The permission walk: every URL pattern, every member of the cast, the answer expected.

The walk reads the patterns from the resolver, so a new page that is not in
the table below fails `test_every_url_pattern_is_in_the_table` until someone
decides who may see it. Each entry builds a concrete URL from a small estate
(real IDs) and says what each of the cast gets:

    anonymous · no role · viewer · runner · lead · admin (a superuser)

GET for pages; a POST-only endpoint is asked with GET too, and POSTed by those
who may not use it (a POST by someone who may would change something). Every
answer of a dashboard page, export or download carries `Cache-Control: no-store`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLResolver, get_resolver, include, path, reverse

from alerts.models import Channel, Delivery, Mute, Rule
from alerts.vocabulary import Condition, DeliveryKind
from dashboard.models import BulkRetry, Problem, RetryRequest, SavedView
from dashboard.problems import lifecycle
from dashboard.vocabulary import BulkState
from tests.support.users import make_user

CAST = ("anonymous", "no role", "viewer", "runner", "lead", "admin")

# Answers other than a plain status code.
LOGIN = "302 to a login page"
ADMIN_LOGIN = "302 to the admin's login page"
ADMIN_INDEX = "302 to the admin's index"
ADMITTED = "let in: below 500, not sent to a login page"
NOT_POSTED = None  # who may use it is not asked to: the POST would change something

Answer = int | str | None


def row(*answers: Answer) -> dict[str, Answer]:
    return dict(zip(CAST, answers, strict=True))


def everyone(answer: Answer) -> dict[str, Answer]:
    return row(*(answer,) * len(CAST))


READ = row(LOGIN, 403, 200, 200, 200, 200)
ACCOUNT = row(LOGIN, 200, 200, 200, 200, 200)
# POST-only: the role check comes before the method check.
POST_ONLY = row(LOGIN, 403, 405, 405, 405, 405)
# Pages and changes of the leads (and the admin) alone.
LEADS_PAGE = row(LOGIN, 403, 403, 403, 200, 200)
LEADS_POST = row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED)


@dataclass(frozen=True)
class Variant:
    """The same view asked another way: a query string, an htmx request."""

    query: str
    headers: dict[str, str] = field(default_factory=dict)
    # None: the same answers as the plain GET.
    get: dict[str, Answer] | None = None


@dataclass(frozen=True)
class Walk:
    """One URL pattern: how to fill it, and what each of the cast gets."""

    url: Callable[[dict[str, Any]], str]
    get: dict[str, Answer]
    post: dict[str, Answer] | None = None
    variants: tuple[Variant, ...] = ()
    # Shows customer data (or refuses to): no cache may keep it.
    private: bool = True
    post_data: dict[str, str] = field(default_factory=dict)


HTMX = {"HX-Request": "true"}

DASHBOARD: dict[str, Walk] = {
    "summary": Walk(lambda e: reverse("summary"), READ),
    "sync-history": Walk(
        lambda e: reverse("sync-history"),
        READ,
        variants=(
            Variant("?range=all", HTMX),
            Variant(f"?q={'0' * 8}"),
            # A problem that does not exist: the page says so.
            Variant("?problem=999999", get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    # What the open pages poll for: a support role, like the pages themselves.
    "summary-live": Walk(
        lambda e: reverse("summary-live"),
        READ,
        variants=(
            Variant("?range=all&platform=Xero", HTMX),
            Variant("?range=bogus", HTMX, row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "sync-history-new": Walk(
        lambda e: reverse("sync-history-new"),
        READ,
        variants=(
            Variant("?range=all&category=failed", HTMX),
            # Another order than newest first: nothing to count, stop polling.
            Variant("?sort=company", HTMX, row(LOGIN, 403, 286, 286, 286, 286)),
            Variant("?newest=not-a-mark", HTMX, row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    # The estate's companies have never been read: the first import is running.
    "first-import": Walk(lambda e: reverse("first-import"), READ, variants=(Variant("", HTMX),)),
    "sync-history-csv": Walk(lambda e: reverse("sync-history-csv") + "?range=all", READ),
    "sync-detail": Walk(
        lambda e: reverse("sync-detail", args=[e["sync"].sync_id]),
        READ,
        variants=(
            Variant("?tab=items"),
            Variant("?tab=items", HTMX),
            Variant("?tab=items&status=failed", HTMX),
            # A status filter that does not exist: the page says so.
            Variant("?tab=items&status=broken", get=row(LOGIN, 403, 400, 400, 400, 400)),
            Variant("?tab=config"),
        ),
    ),
    "company-list": Walk(
        lambda e: reverse("company-list"),
        READ,
        variants=(
            Variant("?sort=streak&dir=asc&failing=on&size=5", HTMX),
            Variant("?q=acme&outstanding=on"),
            # A sort that does not exist, a page link that is not one: the page says so.
            Variant("?sort=size", get=row(LOGIN, 403, 400, 400, 400, 400)),
            Variant("?after=not-a-cursor", get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "company-detail": Walk(
        lambda e: reverse("company-detail", args=[e["company_id"]]),
        READ,
        variants=(
            Variant("", HTMX),
            Variant("?timeline_after=not-a-cursor", get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "transaction-detail": Walk(
        lambda e: reverse("transaction-detail", args=[e["transaction_id"]]), READ
    ),
    # The header's jump: one match is a redirect to its page, none a 404 that says so.
    "jump": Walk(
        lambda e: reverse("jump"),
        READ,
        variants=(
            Variant("?q=Acme+Ltd", get=row(LOGIN, 403, 302, 302, 302, 302)),
            Variant("?q=Ltd+OR+Inc", get=row(LOGIN, 403, 404, 404, 404, 404)),
            Variant(f"?q={'0' * 8}", get=row(LOGIN, 403, 404, 404, 404, 404)),
            Variant("?q=" + "a" * 300, get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "item-search": Walk(
        lambda e: reverse("item-search"),
        READ,
        variants=(
            Variant("?q=period+has+closed"),
            Variant(f"?q={str(uuid.UUID(int=0))[:8]}"),
            # Too short a search: the page says why.
            Variant("?q=ab", get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "items-pushed": Walk(
        lambda e: reverse("items-pushed"),
        READ,
        variants=(
            Variant("?range=24h&platform=Xero&status=failed"),
            # A range or a page link that is not one: the page says so.
            Variant("?range=bogus", get=row(LOGIN, 403, 400, 400, 400, 400)),
            Variant("?after=not-a-cursor", get=row(LOGIN, 403, 400, 400, 400, 400)),
        ),
    ),
    "config-download": Walk(
        lambda e: reverse("config-download", args=[e["company_id"], e["snapshot_id"]]), READ
    ),
    "sync-retry": Walk(
        lambda e: reverse("sync-retry", args=[e["sync"].sync_id]),
        row(LOGIN, 403, 403, 200, 200, 200),
        post=row(LOGIN, 403, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED),
        post_data={"key": str(uuid.UUID(int=1))},
    ),
    "retry-audit": Walk(lambda e: reverse("retry-audit"), READ),
    # The access audit (sign-ins, exports, downloads, refusals): leads and admins.
    "access-audit": Walk(
        lambda e: reverse("access-audit"),
        row(LOGIN, 403, 403, 403, 200, 200),
        variants=(Variant("?action=csv_export&user=lead&start=2026-01-01&end=2026-12-31"),),
    ),
    "retry-detail": Walk(
        lambda e: reverse("retry-detail", args=[e["retry"]]),
        READ,
        variants=(Variant("?poll=1", HTMX),),
    ),
    "retry-cancel": Walk(
        lambda e: reverse("retry-cancel", args=[e["retry"]]),
        POST_ONLY,
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
    ),
    # Opening a bulk retry freezes a preview (the lead's and the admin's) and
    # sends its author to review it.
    "bulk-retry": Walk(lambda e: reverse("bulk-retry"), row(LOGIN, 403, 403, 403, 302, 302)),
    "bulk-detail": Walk(
        lambda e: reverse("bulk-detail", args=[e["bulk"]]),
        READ,
        # The bulk retry has finished: its progress tells htmx to stop polling.
        variants=(Variant("?poll=1", HTMX, row(LOGIN, 403, 286, 286, 286, 286)),),
    ),
    # A draft is its author's (the lead's) alone: to anyone else it does not exist.
    "bulk-review": Walk(
        lambda e: reverse("bulk-review", args=[e["draft"]]),
        row(LOGIN, 403, 403, 403, 200, 404),
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
    ),
    "bulk-cancel": Walk(
        lambda e: reverse("bulk-cancel", args=[e["bulk"]]),
        POST_ONLY,
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
    ),
    # A problem's retry opens a preview like the bulk retry's: leads (and the admin) only.
    "problem-retry": Walk(
        lambda e: reverse("problem-retry", args=[e["problem"]]),
        POST_ONLY,
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
        post_data={"key": str(uuid.UUID(int=2))},
    ),
    # Problems: everyone with a role reads them (and exports the list).
    "problem-list": Walk(
        lambda e: reverse("problem-list"),
        READ,
        variants=(Variant("?state=all&changed=on&sort=recent"),),
    ),
    "problem-list-csv": Walk(lambda e: reverse("problem-list-csv") + "?state=all", READ),
    "problem-detail": Walk(
        lambda e: reverse("problem-detail", args=[e["problem"]]),
        READ,
        variants=(Variant(f"?company={uuid.UUID(int=7)}"),),
    ),
    "problem-playbook-version": Walk(
        lambda e: reverse("problem-playbook-version", args=[e["problem"], 1]), READ
    ),
    # Triage: runners and leads.
    **{
        f"problem-{name}": Walk(
            lambda e, name=name: reverse(f"problem-{name}", args=[e["problem"]]),
            POST_ONLY,
            post=row(LOGIN, 403, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED),
        )
        for name in ("assign", "note", "ticket", "ignore", "snooze", "reopen")
    },
    # The playbook and merging: leads.
    "problem-playbook": Walk(
        lambda e: reverse("problem-playbook", args=[e["problem"]]),
        POST_ONLY,
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
    ),
    "problem-merge": Walk(
        lambda e: reverse("problem-merge", args=[e["problem"]]),
        row(LOGIN, 403, 403, 403, 200, 200),
        post=row(LOGIN, 403, 403, 403, NOT_POSTED, NOT_POSTED),
    ),
    # Saved views: every role saves its own (the POST is not made: it would save one).
    "saved-view-create": Walk(
        lambda e: reverse("saved-view-create"),
        POST_ONLY,
        post=row(LOGIN, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED, NOT_POSTED),
        post_data={"page": "history", "query": "range=all", "name": "Everything"},
    ),
    # The runner's shared view: everyone with a role opens it; its owner and the
    # leads change it, a viewer is refused.
    "saved-view-detail": Walk(
        lambda e: reverse("saved-view-detail", args=[e["shared_view"]]),
        READ,
        post=row(LOGIN, 403, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED),
        post_data={"name": "Renamed"},
    ),
    "saved-view-delete": Walk(
        lambda e: reverse("saved-view-delete", args=[e["shared_view"]]),
        POST_ONLY,
        post=row(LOGIN, 403, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED),
    ),
    # Anyone who may open a view may make it their own default.
    "saved-view-default": Walk(
        lambda e: reverse("saved-view-default", args=[e["shared_view"]]),
        POST_ONLY,
        post=row(LOGIN, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED, NOT_POSTED),
    ),
    # Part of the app like any page: someone without a role has no times to read.
    "preferences": Walk(
        lambda e: reverse("preferences"),
        READ,
        post=row(LOGIN, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED, NOT_POSTED),
    ),
    # The header's theme switch: like the preferences it belongs to.
    "preferences-theme": Walk(
        lambda e: reverse("preferences-theme"),
        POST_ONLY,
        post=row(LOGIN, 403, NOT_POSTED, NOT_POSTED, NOT_POSTED, NOT_POSTED),
    ),
    # Alerts: everyone with a role reads what is firing and the rules; leads change them.
    "alert-list": Walk(lambda e: reverse("alert-list"), READ),
    "alert-rule-detail": Walk(
        lambda e: reverse("alert-rule-detail", args=[e["rule"]]),
        READ,
        # A page link that is not one: the page says so.
        variants=(Variant("?before=abc", get=row(LOGIN, 403, 400, 400, 400, 400)),),
    ),
    **{
        name: Walk(url, LEADS_PAGE, post=LEADS_POST)
        for name, url in {
            "alert-rule-new": lambda e: reverse("alert-rule-new"),
            "alert-rule-edit": lambda e: reverse("alert-rule-edit", args=[e["rule"]]),
            "alert-rule-delete": lambda e: reverse("alert-rule-delete", args=[e["rule"]]),
            "alert-mute-new": lambda e: reverse("alert-mute-new"),
            # Channels (their names, kinds and hosts) and the delivery log: leads only.
            "alert-channel-new": lambda e: reverse("alert-channel-new"),
            "alert-channel-edit": lambda e: reverse("alert-channel-edit", args=[e["channel"]]),
            "alert-channel-delete": lambda e: reverse("alert-channel-delete", args=[e["channel"]]),
        }.items()
    },
    **{
        name: Walk(url, POST_ONLY, post=LEADS_POST)
        for name, url in {
            "alert-rule-toggle": lambda e: reverse("alert-rule-toggle", args=[e["rule"]]),
            "alert-rule-snooze": lambda e: reverse("alert-rule-snooze", args=[e["rule"]]),
            "alert-mute-delete": lambda e: reverse("alert-mute-delete", args=[e["mute"]]),
            "alert-channel-test": lambda e: reverse("alert-channel-test", args=[e["channel"]]),
        }.items()
    },
    "alert-channel-list": Walk(lambda e: reverse("alert-channel-list"), LEADS_PAGE),
    "alert-delivery-list": Walk(
        lambda e: reverse("alert-delivery-list"),
        LEADS_PAGE,
        variants=(
            Variant("?state=failed"),
            Variant("?state=bogus", get=row(LOGIN, 403, 403, 403, 400, 400)),
            Variant("?channel=999999", get=row(LOGIN, 403, 403, 403, 400, 400)),
            # A row polled that does not exist (any more): stop polling.
            Variant("?delivery=999999", HTMX, row(LOGIN, 403, 403, 403, 286, 286)),
        ),
    ),
    # Public: it authenticates each delivery by its signature (none here: 400).
    "webhook-codat": Walk(
        lambda e: reverse("webhook-codat"), everyone(405), post=everyone(400), private=False
    ),
}

# For load balancers, monitors and Prometheus, which have no session: the cast
# makes no difference. The metrics are off (404) until a token or an address
# list is set (tests/health/ checks who may read them then).
MONITORING: dict[str, Walk] = {
    "healthz": Walk(lambda e: reverse("healthz"), everyone(200), private=False),
    "readyz": Walk(lambda e: reverse("readyz"), everyone(200), private=False),
    "metrics": Walk(lambda e: reverse("metrics"), everyone(404), private=False),
}

ACCOUNTS: dict[str, Walk] = {
    "login": Walk(lambda e: reverse("login"), everyone(200), private=False),
    # Anyone logged in may leave, with or without a role (GET is not a logout).
    "logout": Walk(
        lambda e: reverse("logout"),
        row(LOGIN, 405, 405, 405, 405, 405),
        post=row(LOGIN, 302, 302, 302, 302, 302),
        private=False,
    ),
    "password_change": Walk(lambda e: reverse("password_change"), ACCOUNT, private=False),
    "password_change_done": Walk(lambda e: reverse("password_change_done"), ACCOUNT, private=False),
    # Without e-mail (as here) there is no password reset: its pages do not exist.
    "password_reset": Walk(lambda e: reverse("password_reset"), everyone(404), private=False),
    "password_reset_done": Walk(
        lambda e: reverse("password_reset_done"), everyone(404), private=False
    ),
    "password_reset_confirm": Walk(
        lambda e: reverse("password_reset_confirm", args=["MQ", "not-a-token"]),
        everyone(404),
        private=False,
    ),
    "password_reset_complete": Walk(
        lambda e: reverse("password_reset_complete"), everyone(404), private=False
    ),
    # Without single sign-on configured (as here) its two pages do not exist.
    "sso-start": Walk(lambda e: reverse("sso-start"), everyone(404), private=False),
    "sso-callback": Walk(lambda e: reverse("sso-callback"), everyone(404), private=False),
}


def _sandbox(name: str, **kwargs: str) -> Callable[[dict[str, Any]], str]:
    def url(e: dict[str, Any]) -> str:
        filled = {k: str(e[v]) for k, v in kwargs.items()}
        return reverse(f"sandbox:{name}", kwargs=filled)

    return url


_C = {"company_id": "company_id"}
_S = {**_C, "sync_id": "sync_id"}
# The sandbox authenticates by API key, not by session: the cast makes no
# difference. Disabled, every endpoint is 404; enabled, 401 without the key.
SANDBOX: dict[str, Callable[[dict[str, Any]], str]] = {
    "sandbox:companies": _sandbox("companies"),
    "sandbox:company": _sandbox("company", **_C),
    "sandbox:connections": _sandbox("connections", **_C),
    "sandbox:push-operations": _sandbox("push-operations", **_C),
    "sandbox:config": _sandbox("config", **_C),
    "sandbox:expense-transactions": _sandbox("expense-transactions", **_C),
    "sandbox:initiate-sync": _sandbox("initiate-sync", **_C),
    "sandbox:syncs": _sandbox("syncs", **_C),
    "sandbox:latest-sync": _sandbox("latest-sync", **_C),
    "sandbox:last-successful-sync": _sandbox("last-successful-sync", **_C),
    "sandbox:sync": _sandbox("sync", **_S),
    "sandbox:transactions": _sandbox("transactions", **_S),
    "sandbox:transaction": _sandbox("transaction", **_S, transaction_id="transaction_id"),
    "sandbox/^(?P<rest>.*)$": lambda e: "/sandbox/no/such/endpoint",
}

# Django admin: staff only, checked by the admin itself. Its site-wide pages
# are listed here; each registered model adds the views in ADMIN_MODEL_VIEWS.
# Whoever is not staff is sent to the admin's login; the superuser is let in,
# and past that the admin answers in its own way (403 for adding to a
# read-only table, a redirect for a table with no rows), which is not ours.
NON_STAFF = row(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMITTED)
ADMIN_PAGE = row(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)
ADMIN_SITE: dict[str, tuple[Callable[[dict[str, Any]], str], dict[str, Answer]]] = {
    "admin:index": (lambda e: reverse("admin:index"), ADMIN_PAGE),
    "admin:login": (
        lambda e: reverse("admin:login"),
        row(200, 200, 200, 200, 200, ADMIN_INDEX),
    ),
    # Someone who is not staff is sent back to the index (and from there to log in).
    "admin:logout": (
        lambda e: reverse("admin:logout"),
        row(LOGIN, ADMIN_INDEX, ADMIN_INDEX, ADMIN_INDEX, ADMIN_INDEX, 405),
    ),
    "admin:password_change": (lambda e: reverse("admin:password_change"), ADMIN_PAGE),
    "admin:password_change_done": (lambda e: reverse("admin:password_change_done"), ADMIN_PAGE),
    "admin:autocomplete": (lambda e: reverse("admin:autocomplete"), NON_STAFF),
    "admin:jsi18n": (lambda e: reverse("admin:jsi18n"), ADMIN_PAGE),
    "admin:view_on_site": (
        lambda e: reverse("admin:view_on_site", args=[e["company_type"], e["company_pk"]]),
        NON_STAFF,
    ),
    "admin:app_list": (lambda e: reverse("admin:app_list", args=["dashboard"]), ADMIN_PAGE),
    "admin/(?P<url>.*)$": (lambda e: "/admin/no/such/page/", NON_STAFF),
    # Beside the model views of users: setting someone's password.
    "admin:auth_user_password_change": (
        lambda e: reverse("admin:auth_user_password_change", args=[e["cast"]["no role"].pk]),
        NON_STAFF,
    ),
}
# name suffix (None: the unnamed redirect to the change page) → its route.
ADMIN_MODEL_VIEWS = {
    "changelist": "",
    "add": "add/",
    "history": "<path:object_id>/history/",
    "delete": "<path:object_id>/delete/",
    "change": "<path:object_id>/change/",
    None: "<path:object_id>/",
}


def _admin_url(model: type[Model], route: str) -> Callable[[dict[str, Any]], str]:
    """The model's admin page at `route`, on its first row (or a missing one, 0)."""

    def url(e: dict[str, Any]) -> str:
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        opts = model._meta
        return f"/admin/{opts.app_label}/{opts.model_name}/" + route.replace(
            "<path:object_id>", str(first or 0)
        )

    return url


# The sandbox's tables exist in the admin only while the sandbox is enabled
# (it is not, in the walk): even a superuser is refused their lists.
SANDBOX_ADMIN_PAGE = row(LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 403)


def admin_model_walks() -> dict[str, tuple[Callable[[dict[str, Any]], str], dict[str, Answer]]]:
    """Each registered model's admin views, keyed as the walk names them."""
    walks = {}
    for model in admin.site._registry:
        app, name = model._meta.app_label, model._meta.model_name
        changelist = SANDBOX_ADMIN_PAGE if app == "sandbox" else ADMIN_PAGE
        for view, route in ADMIN_MODEL_VIEWS.items():
            key = f"admin:{app}_{name}_{view}" if view else f"admin/{app}/{name}/{route}"
            walks[key] = (
                _admin_url(model, route),
                changelist if view == "changelist" else NON_STAFF,
            )
    return walks


# --- the walk ---


def url_patterns() -> Iterator[str]:
    """Every pattern the resolver serves, by its namespaced name (else its route)."""

    def walk(resolver: URLResolver, prefix: str, namespaces: tuple[str, ...]):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
                yield from walk(pattern, prefix + str(pattern.pattern), inner)
            elif pattern.name:
                yield ":".join((*namespaces, pattern.name))
            else:
                yield prefix + str(pattern.pattern)

    yield from walk(get_resolver(), "", ())


def new_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Acme Ltd owes 1,234.56")


# A page someone adds without a thought for access (this module as a URLconf).
urlpatterns = [path("new/", new_page, name="new-page"), path("", include("synchealth.urls"))]
handler403 = "dashboard.access.permission_denied"


@pytest.mark.urls(__name__)
def test_a_new_page_needs_a_role_and_a_row_in_the_table(client, db):
    tabled = {*DASHBOARD, *MONITORING, *ACCOUNTS, *SANDBOX, *ADMIN_SITE, *admin_model_walks()}
    assert set(url_patterns()) - tabled == {"new-page"}
    client.force_login(make_user("nobody"))
    refused = client.get("/new/")
    assert refused.status_code == 403
    assert "Acme" not in refused.content.decode()
    client.force_login(make_user("viewer", "Support viewer"))
    shown = client.get("/new/")
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]


def test_every_url_pattern_is_in_the_table():
    tabled = {*DASHBOARD, *MONITORING, *ACCOUNTS, *SANDBOX, *ADMIN_SITE, *admin_model_walks()}
    served = list(url_patterns())
    assert len(served) == len(set(served)), "two patterns share a key"
    missing = sorted(set(served) - tabled)
    assert not missing, f"say who may see these (tests/views/test_permission_walk.py): {missing}"
    gone = sorted(tabled - set(served))
    assert not gone, f"the table names patterns nobody serves: {gone}"


@pytest.fixture
def walk_estate(estate) -> dict[str, Any]:
    """Real IDs for every pattern: the views' estate, a retry, a bulk retry, a draft and the
    problem of the estate's failed item."""
    cast = {
        "no role": make_user("nobody"),
        "viewer": make_user("viewer", "Support viewer"),
        "runner": make_user("runner", "Support runner"),
        "lead": make_user("lead", "Support lead"),
        "admin": User.objects.create_superuser("admin", password=None),
    }
    sync = estate["push_error"]
    retry = RetryRequest.objects.create(
        key=uuid.uuid4(), user=cast["runner"], sync=sync, company=sync.company, item_count=1
    )
    bulk = BulkRetry.objects.create(
        key=uuid.uuid4(), user=cast["lead"], scope="range=all", state=BulkState.FANNED_OUT
    )
    draft = BulkRetry.objects.create(key=uuid.uuid4(), user=cast["lead"], scope="range=all")
    problem = Problem.objects.get(status_code=sync.status_code)
    lifecycle.edit_playbook(problem.pk, cast["lead"], "Check the period.", "")
    channel = Channel(name="Ops", display="json://hooks.example.com")
    channel.url = "json://hooks.example.com/in?token=secret"
    channel.save()
    rule = Rule.objects.create(name="Streaks", condition=Condition.STREAK, threshold=3)
    rule.channels.add(channel)
    mute = Mute.objects.create(rule=rule)
    Delivery.objects.create(kind=DeliveryKind.TEST, channel=channel, title="Test", body="")
    shared_view = SavedView.objects.create(
        owner=cast["runner"], page="history", name="Failed", query="category=failed", shared=True
    )
    return {
        "cast": cast,
        "shared_view": shared_view.pk,
        "sync": sync,
        "sync_id": sync.sync_id,
        "company_id": estate["xero"].company_id,
        "company_pk": estate["xero"].pk,
        "company_type": ContentType.objects.get_for_model(estate["xero"]).pk,
        "transaction_id": sync.items.first().transaction_id,
        "snapshot_id": estate["xero"].configs.first().pk,
        "retry": retry.pk,
        "bulk": bulk.pk,
        "draft": draft.pk,
        "problem": problem.pk,
        "rule": rule.pk,
        "channel": channel.pk,
        "mute": mute.pk,
    }


def _clients(walk_estate: dict[str, Any]) -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for who, user in walk_estate["cast"].items():
        clients[who] = Client()
        clients[who].force_login(user)
    return clients


def _location(response: HttpResponse) -> str:
    return response.get("Location", "").split("?", 1)[0]


def answered(expected: Answer, response: HttpResponse) -> bool:
    status = response.status_code
    if expected == LOGIN:
        return status == 302 and _location(response) in (reverse("login"), reverse("admin:login"))
    if expected == ADMIN_LOGIN:
        return status == 302 and _location(response) == reverse("admin:login")
    if expected == ADMIN_INDEX:
        return status == 302 and _location(response) == reverse("admin:index")
    if expected == ADMITTED:
        return status < 500 and not (status == 302 and "login" in _location(response))
    return status == expected


def _shown(response: HttpResponse) -> str:
    where = f" → {response['Location']}" if response.has_header("Location") else ""
    return f"{response.status_code}{where}"


def _walk(walks: dict[str, Walk], walk_estate: dict[str, Any]) -> tuple[list[str], list[str], int]:
    """Ask every walk as every member of the cast: (wrong answers, cacheable answers, asked)."""
    wrong, cacheable, asked = [], [], 0
    clients = _clients(walk_estate)
    for key, walk in walks.items():
        base = walk.url(walk_estate)
        for who, client in clients.items():
            requests: list[tuple[str, str, dict[str, str], Answer]] = [
                ("GET", base + variant.query, variant.headers, (variant.get or walk.get)[who])
                for variant in (Variant(""), *walk.variants)
            ]
            if walk.post is not None and walk.post[who] is not NOT_POSTED:
                requests.append(("POST", base, {}, walk.post[who]))
            for method, url, headers, expected in requests:
                if method == "GET":
                    response = client.get(url, headers=headers)
                else:
                    response = client.post(url, walk.post_data)
                    if who != "anonymous":  # a logout ends the session: start another
                        client.force_login(walk_estate["cast"][who])
                asked += 1
                if not answered(expected, response):
                    wrong.append(f"{key} {method} {url} as {who}: {_shown(response)}, {expected=}")
                if walk.private and "no-store" not in response.get("Cache-Control", ""):
                    cacheable.append(f"{key} {method} {url} as {who}")
    return wrong, cacheable, asked


@pytest.mark.system  # takes seconds: `make test` and CI run it
def test_the_dashboard_and_accounts_answer_each_role_as_the_table_says(walk_estate, settings):
    settings.CODAT_WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    settings.HEALTH_UPSTREAM_CHECK_SECONDS = 0  # /readyz asks no upstream here
    wrong, cacheable, asked = _walk({**DASHBOARD, **MONITORING, **ACCOUNTS}, walk_estate)
    assert not wrong, "\n".join(wrong)
    assert not cacheable, "customer data without Cache-Control: no-store:\n" + "\n".join(cacheable)
    assert asked > 6 * len(DASHBOARD)


@pytest.mark.system  # takes seconds: `make test` and CI run it
def test_django_admin_lets_in_only_staff(walk_estate):
    walks = {
        key: Walk(url, answers, private=False)
        for key, (url, answers) in {**ADMIN_SITE, **admin_model_walks()}.items()
    }
    wrong, _, asked = _walk(walks, walk_estate)
    assert not wrong, "\n".join(wrong)
    assert asked >= 6 * len(walks)


@pytest.mark.parametrize(("enabled", "status"), [(False, 404), (True, 401)])
def test_the_sandbox_answers_only_to_its_api_key(walk_estate, sandbox_enabled, enabled, status):
    sandbox_enabled.SANDBOX_ENABLED = enabled
    walks = {
        key: Walk(url, everyone(status), post=everyone(status), private=False)
        for key, url in SANDBOX.items()
    }
    wrong, _, _ = _walk(walks, walk_estate)
    assert not wrong, "\n".join(wrong)
