"""Our own health as alerts: no successful refresh, the upstream unreachable or rate
limiting us, webhooks not arriving; each starts once and recovers once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from unittest import mock

import httpx
import pytest
import time_machine
from django.utils import timezone

from alerts.conditions import health, webhooks
from alerts.engine import evaluate
from alerts.models import Transition
from alerts.vocabulary import Condition, TransitionKind
from dashboard import health_signals, ingest
from dashboard.models import Company, SystemHealth
from dashboard.upstream import Upstream, UpstreamError
from dashboard.vocabulary import UpstreamTrouble
from sandbox import models as sb
from sandbox import services
from tests.support.alert_rules import capture_enqueued, make_rule
from tests.support.factories import make_company
from tests.support.health import poll, refreshed_before, sync_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("announced")]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def kinds(rule) -> list[str]:
    return list(
        Transition.objects.filter(rule=rule).order_by("at", "pk").values_list("kind", flat=True)
    )


# --- the checks, on the signals as recorded ---


def test_no_refresh_fires_once_the_last_success_is_older_than_the_threshold():
    rule = make_rule(Condition.NO_REFRESH, threshold=30)
    now = timezone.now()
    SystemHealth.objects.create(
        pk=1, watching_since=now - timedelta(days=1), last_refresh_at=now - timedelta(minutes=29)
    )
    assert health.NoRefresh().findings(rule, now) == {}
    found = health.NoRefresh().findings(rule, now + timedelta(minutes=2))
    assert list(found) == ["system"]
    assert found["system"].summary.startswith("No successful refresh for 31 minutes (the last at ")
    assert found["system"].summary.endswith(" UTC)")


def test_a_fresh_install_without_a_refresh_fires_only_once_it_has_had_its_chance():
    rule = make_rule(Condition.NO_REFRESH, threshold=30)
    now = timezone.now()
    SystemHealth.objects.create(pk=1, watching_since=now - timedelta(minutes=40))
    # No companies yet: nothing to refresh, nothing wrong.
    assert health.NoRefresh().findings(rule, now) == {}
    make_company()
    assert "No successful refresh yet" in health.NoRefresh().findings(rule, now)["system"].summary
    # Up for less than the threshold: a refresh may still come.
    assert health.NoRefresh().findings(rule, now - timedelta(minutes=15)) == {}


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (UpstreamTrouble.UNREACHABLE, "unreachable"),
        (UpstreamTrouble.RATE_LIMITED, "rate limiting us"),
    ],
)
def test_upstream_down_says_which_trouble_once_it_has_lasted_the_threshold(kind, words):
    rule = make_rule(Condition.UPSTREAM_DOWN, threshold=10)
    now = timezone.now()
    SystemHealth.objects.create(
        pk=1, upstream_trouble_since=now - timedelta(minutes=9), upstream_trouble_kind=kind
    )
    assert health.UpstreamDown().findings(rule, now) == {}
    found = health.UpstreamDown().findings(rule, now + timedelta(minutes=1))["system"]
    assert found.summary.startswith(f"The upstream has been {words} since ")
    assert found.detail["kind"] == kind


def test_webhooks_missing_counts_the_last_hour_and_names_the_companies_most_affected(settings):
    settings.CODAT_WEBHOOK_SECRET = SECRET
    rule = make_rule(Condition.WEBHOOKS_MISSING, threshold=3)
    acme, globex = make_company(name="Acme Ltd"), make_company(name="Globex Inc")
    for company in (acme, globex):
        refreshed_before(company, timezone.now() - timedelta(days=1))
    started = timezone.now() - timedelta(minutes=30)
    poll(acme, [sync_record(acme, started=started) for _ in range(2)])
    assert webhooks.WebhooksMissing().findings(rule, timezone.now()) == {}
    poll(globex, [sync_record(globex, started=started)])
    found = webhooks.WebhooksMissing().findings(rule, timezone.now())["system"]
    assert (
        found.summary
        == "3 webhooks missed in the last hour, from 2 companies: Acme Ltd (2), Globex Inc (1)"
    )
    assert [c["name"] for c in found.detail["companies"]] == ["Acme Ltd", "Globex Inc"]
    # A rule for one company counts only its own.
    rule.companies.set([globex])
    assert webhooks.WebhooksMissing().findings(rule, timezone.now()) == {}
    # An hour on, they are out of the window.
    rule.companies.clear()
    assert (
        webhooks.WebhooksMissing().findings(rule, timezone.now() + timedelta(hours=1, minutes=1))
        == {}
    )


def test_webhooks_missing_never_fires_while_no_webhooks_are_expected(settings):
    settings.CODAT_WEBHOOK_SECRET = ""
    rule = make_rule(Condition.WEBHOOKS_MISSING, threshold=1)
    assert webhooks.WebhooksMissing().findings(rule, timezone.now()) == {}


# --- the must-show scenarios, against the sandbox ---


@pytest.fixture
def sandbox_client(in_process_upstream) -> Upstream:
    """The sandbox in this process; one attempt a call, so a fault shows at once."""
    from django.core.handlers.wsgi import WSGIHandler

    client = Upstream(
        base_url=in_process_upstream.base_url,
        api_key="",
        limiter=in_process_upstream.limiter,
        transport=httpx.WSGITransport(app=WSGIHandler()),
        max_attempts=1,
    )
    client.http.headers["Authorization"] = in_process_upstream.http.headers["Authorization"]
    yield client
    client.close()


def refresh_all(client: Upstream) -> int:
    """Beat's reconciliation, inline: every company refreshed; how many failed."""
    failed = 0
    for company in Company.objects.order_by("pk"):
        try:
            ingest.refresh_company(client, company)
        except UpstreamError:
            failed += 1
    return failed


def configure(config: sb.SandboxSettings, **values) -> None:
    for name, value in values.items():
        setattr(config, name, value)
    config.save()
    sb.SandboxSettings._cached = None


@pytest.mark.system
def test_the_upstream_made_unreachable_alerts_once_and_recovers_once(
    mirrored, sandbox_client, sandbox_config, monkeypatch
):
    delivered = capture_enqueued(monkeypatch)
    rule = make_rule(Condition.UPSTREAM_DOWN, threshold=2, hold_minutes=0)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        configure(sandbox_config, error_rate=1.0)
        assert refresh_all(sandbox_client) == Company.objects.count()
        assert health_signals.upstream_trouble()[1] == UpstreamTrouble.UNREACHABLE
        assert evaluate(now=timezone.now()) == []  # not for long enough yet
        for _ in range(3):  # still down, minute after minute
            clock.shift(timedelta(minutes=1))
            assert refresh_all(sandbox_client) == Company.objects.count()
            evaluate(now=timezone.now())
        assert kinds(rule) == [TransitionKind.FIRED]
        fired = Transition.objects.get(rule=rule)
        assert fired.summary.startswith("The upstream has been unreachable since ")

        configure(sandbox_config, error_rate=0.0)
        clock.shift(timedelta(minutes=1))
        assert refresh_all(sandbox_client) == 0
        assert health_signals.upstream_trouble() is None
        evaluate(now=timezone.now())
        clock.shift(timedelta(minutes=1))
        evaluate(now=timezone.now())
    assert kinds(rule) == [TransitionKind.FIRED, TransitionKind.RECOVERED]
    assert len(delivered.transitions) == 2


@pytest.mark.system
def test_webhooks_stopped_while_the_sandbox_keeps_syncing_alert_once(
    mirrored, sandbox_client, sandbox_config, settings, live_server, monkeypatch
):
    delivered = capture_enqueued(monkeypatch)
    settings.CODAT_WEBHOOK_SECRET = SECRET
    configure(sandbox_config, long_running_rate=0.0)
    # The sandbox's deliveries to our receiver, switched off.
    sb.WebhookConsumer.objects.create(
        url=f"{live_server.url}/webhooks/codat", secret=SECRET, enabled=False
    )
    rule = make_rule(Condition.WEBHOOKS_MISSING, threshold=3, hold_minutes=0)
    companies = list(sb.Company.objects.order_by("pk")[:3])
    with time_machine.travel(timezone.now(), tick=False) as clock:
        with mock.patch("sandbox.services._enqueue_finalize"):
            for company in companies:
                services.create_expense_sync(
                    company=company, transaction_ids=[uuid.uuid4() for _ in range(3)]
                )
        clock.shift(timedelta(minutes=1))
        # Ours, and any the estate left running.
        finished = services.finalize_due()
        assert finished >= len(companies)
        assert not sb.WebhookDelivery.objects.exists()
        # Beat's poll, ten minutes on, finds them finished.
        clock.shift(timedelta(minutes=9))
        assert refresh_all(sandbox_client) == 0
        assert (
            health_signals.missed_webhooks(timezone.now() - timedelta(hours=1)).missed == finished
        )
        evaluate(now=timezone.now())
        for _ in range(3):  # more polls and evaluations: the same condition, no new alert
            clock.shift(timedelta(minutes=1))
            refresh_all(sandbox_client)
            health_signals.settle()
            evaluate(now=timezone.now())
    assert kinds(rule) == [TransitionKind.FIRED]
    fired = Transition.objects.get(rule=rule)
    assert fired.summary.startswith(f"{finished} webhooks missed in the last hour, from ")
    assert len(delivered.transitions) == 1


@pytest.mark.system
def test_while_webhooks_arrive_the_sandbox_syncing_counts_no_gap(
    mirrored, sandbox_client, sandbox_config, settings, live_server, celery_eager, aimed
):
    settings.CODAT_WEBHOOK_SECRET = SECRET
    configure(sandbox_config, long_running_rate=0.0)
    sb.WebhookConsumer.objects.create(url=f"{live_server.url}/webhooks/codat", secret=SECRET)
    company = sb.Company.objects.order_by("pk").first()
    with mock.patch("sandbox.services._enqueue_finalize"):
        services.create_expense_sync(company=company, transaction_ids=[uuid.uuid4()])
    assert services.finalize_due(now=timezone.now() + timedelta(minutes=5)) >= 1
    assert not sb.WebhookDelivery.objects.filter(delivered_at__isnull=True).exists()
    assert refresh_all(sandbox_client) == 0
    assert health_signals.missed_webhooks(timezone.now() - timedelta(hours=1)).missed == 0
