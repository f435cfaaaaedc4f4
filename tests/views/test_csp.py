"""Every page carries the strict Content-Security-Policy, and nothing in it needs a looser one."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.html_policy import blank_template_syntax, inline_code

ROOT = Path(__file__).resolve().parents[2]
STRICT = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'"},
    "font-src": {"'self'"},
    "connect-src": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'none'"},
    "object-src": {"'none'"},
}


def _policy(header: str) -> dict[str, set[str]]:
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: set(sources) for name, *sources in directives}


def _pages(estate) -> list[str]:
    from alerts.models import Channel, Delivery, Rule, Transition
    from alerts.vocabulary import Condition, DeliveryKind
    from dashboard.models import Problem
    from dashboard.problems import lifecycle

    failed = estate["push_error"].sync_id
    detail = reverse("sync-detail", args=[failed])
    problem = Problem.objects.get()
    lifecycle.edit_playbook(problem.pk, None, "**Check** the period.", "")
    other = Problem.objects.create(status_code=4000, cause="other")
    channel = Channel(name="Ops", display="json://hooks.example.com")
    channel.url = "json://hooks.example.com/in?token=secret"
    channel.save()
    rule = Rule.objects.create(name="Streaks", condition=Condition.STREAK, threshold=3)
    Delivery.objects.create(kind=DeliveryKind.TEST, channel=channel, title="Test", body="")
    Transition.objects.create(
        rule=rule, subject="system", sequence=1, kind="fired", summary="It started"
    )
    return [
        reverse("alert-list"),
        reverse("alert-rule-new"),
        reverse("alert-rule-detail", args=[rule.pk]),
        reverse("alert-rule-edit", args=[rule.pk]),
        reverse("alert-rule-delete", args=[rule.pk]),
        reverse("alert-mute-new") + f"?company={estate['xero'].company_id}",
        reverse("alert-channel-list"),
        reverse("alert-channel-new"),
        reverse("alert-channel-edit", args=[channel.pk]),
        reverse("alert-channel-delete", args=[channel.pk]),
        reverse("alert-delivery-list"),
        reverse("admin:alerts_channel_add"),
        reverse("admin:alerts_channel_change", args=[channel.pk]),
        reverse("admin:alerts_rule_add"),
        reverse("problem-list"),
        reverse("problem-detail", args=[problem.pk]),
        reverse("problem-playbook-version", args=[problem.pk, 1]),
        reverse("problem-merge", args=[problem.pk]) + f"?into={other.pk}",
        reverse("summary"),
        reverse("summary") + "?range=24h",
        reverse("sync-history") + "?range=all&sort=duration&dir=asc",
        detail,
        detail + "?tab=items",
        detail + "?tab=config",
        reverse("sync-detail", args=[estate["running"].sync_id]),
        reverse("company-detail", args=[estate["xero"].company_id]),
        reverse("item-search") + "?q=period+has+closed",
        reverse("item-search") + f"?q={estate['push_error'].items.first().transaction_id}",
        reverse("items-pushed") + "?range=30d&status=failed",
        reverse("preferences"),
        reverse("sync-retry", args=[failed]),
        reverse("retry-audit"),
        reverse("access-audit"),
        reverse("bulk-retry") + "?range=all&code=5130",
        reverse("password_change"),
        reverse("admin:index"),
        reverse("admin:django_celery_beat_periodictask_add"),
        reverse("admin:dashboard_sync_changelist"),
        "/no-such-page/",
    ]


def test_every_page_carries_the_strict_policy_and_no_inline_code(admin_client: Client, estate):
    for url in _pages(estate):
        response = admin_client.get(url, follow=True)
        assert response.status_code in (200, 404), url
        assert _policy(response["Content-Security-Policy"]) == STRICT, url
        assert inline_code(response.content.decode()) == [], url


def test_the_fragments_htmx_swaps_in_carry_it_too(admin_client: Client, estate):
    detail = reverse("sync-detail", args=[estate["running"].sync_id])
    from alerts.models import Channel, Delivery

    channel = Channel.objects.create(name="Ops", display="slack")
    made = Delivery.objects.create(kind="test", channel=channel, title="Test", body="")
    polled = reverse("alert-delivery-list") + f"?delivery={made.pk}"
    for url in [reverse("sync-history") + "?range=all", detail + "?poll=1", polled]:
        response = admin_client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 200, url
        assert _policy(response["Content-Security-Policy"]) == STRICT, url
        assert inline_code(response.content.decode()) == [], url


def test_the_login_page_carries_it_for_anonymous_visitors(client: Client, db):
    response = client.get(reverse("login"))
    assert _policy(response["Content-Security-Policy"]) == STRICT
    assert inline_code(response.content.decode()) == []


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.html"))
)
def test_no_template_holds_inline_script_handlers_or_styles(path):
    source = (ROOT / path).read_text(encoding="utf-8")
    assert inline_code(blank_template_syntax(source)) == []


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<script>alert(1)</script>", "an inline script"),
        ('<button onclick="go()">', "an inline event handler"),
        ('<div style="width: 3px">', "an inline style"),
        ("<style>p { color: red }</style>", "an inline style sheet"),
        ('<div hx-get="/" hx-trigger="every 3s [ok()]">', "a trigger filter"),
        ('<button hx-on:click="go()">', "htmx would evaluate it"),
        ('<div hx-vals="js:{a: go()}">', "htmx would evaluate it"),
    ],
)
def test_the_inspection_finds_what_the_policy_blocks(html, problem):
    assert any(problem in found for found in inline_code(html))


def test_the_inspection_lets_files_and_data_blocks_through():
    html = (
        '<script src="/static/js/app.js" defer></script>'
        '<script id="d" type="application/json">{"a": 1}</script>'
        '<input type="radio" name="range" {% if x %}checked{% endif %}>'
        '<form hx-trigger="submit, change from:(#f input[type=checkbox])">'
    )
    assert inline_code(blank_template_syntax(html)) == []
