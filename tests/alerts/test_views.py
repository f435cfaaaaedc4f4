"""The alerts pages: who may read and change what, what they show, what they never show.

The cast: a viewer and a runner read /alerts/ and rule pages but change
nothing and see no buttons; a lead does everything; channels and the delivery
log are the leads' alone. A channel's URL (with its token) and its signing
secret never come back in any response once saved.
"""

from __future__ import annotations

import base64
import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from svix.webhooks import Webhook

from alerts.forms import new_signing_secret
from alerts.models import AlertState, Channel, Delivery, Mute, Rule, Transition
from alerts.vocabulary import (
    ChannelKind,
    Condition,
    DeliveryKind,
    DeliveryState,
    SubjectState,
    TransitionKind,
)
from tests.support.factories import make_company, make_sync, problem_of
from tests.support.users import make_user

TOKEN = "T0KEN-s3cr3t-1234567890"
PUBLIC = "93.184.216.34"
HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def public_dns(monkeypatch):
    """Every host name resolves to one public address (no DNS in tests); literals stay."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host and any(c.isalpha() for c in str(host)) and ":" not in str(host):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lead_client(lead):
    return _client(lead)


@pytest.fixture
def cast(db) -> dict[str, Client]:
    return {
        "viewer": _client(make_user("viewer", "Support viewer")),
        "runner": _client(make_user("runner", "Support runner")),
    }


@pytest.fixture
def channel(db, public_dns) -> Channel:
    made = Channel(name="Ops Slack", kind=ChannelKind.NOTIFY, display="json://hooks.example.com")
    made.url = f"json://hooks.example.com/alerts?token={TOKEN}"
    made.save()
    return made


@pytest.fixture
def rule(channel) -> Rule:
    made = Rule.objects.create(name="Streaks", condition=Condition.STREAK, threshold=3)
    made.channels.add(channel)
    return made


def _body(response) -> str:
    return response.content.decode()


# --- reading ---


def test_every_support_role_reads_the_alerts_page_and_only_leads_see_buttons(
    cast, lead_client, rule
):
    for client in cast.values():
        response = client.get(reverse("alert-list"))
        body = _body(response)
        assert response.status_code == 200
        assert "Streaks" in body and "3 failed syncs in a row" in body
        assert 'data-testid="new-rule"' not in body
        assert "Ask a support lead to change alert rules" in body
        detail = _body(client.get(reverse("alert-rule-detail", args=[rule.pk])))
        assert 'data-testid="edit-rule"' not in detail
        assert "Ask a support lead" in detail
    lead = _body(lead_client.get(reverse("alert-list")))
    assert 'data-testid="new-rule"' in lead
    assert "Ask a support lead" not in lead


def test_the_top_navigation_links_to_alerts_for_every_role(cast, lead_client):
    for client in [*cast.values(), lead_client]:
        assert f'href="{reverse("alert-list")}"' in _body(client.get(reverse("summary")))


def test_the_page_shows_what_is_firing_and_what_changed_with_links(viewer_client, rule):
    company = make_company(name="Acme Ltd")
    AlertState.objects.create(
        rule=rule,
        subject=f"company:{company.company_id}",
        label="Acme Ltd",
        state=SubjectState.FIRING,
    )
    Transition.objects.create(
        rule=rule,
        subject=f"company:{company.company_id}",
        sequence=1,
        kind=TransitionKind.FIRED,
        summary="Acme Ltd has failed 3 syncs in a row",
        path=f"/companies/{company.company_id}/",
    )
    body = _body(viewer_client.get(reverse("alert-list")))
    company_url = reverse("company-detail", args=[company.company_id])
    assert f'<a href="{company_url}">Acme Ltd</a>' in body
    assert f'<a href="{company_url}">Acme Ltd has failed 3 syncs in a row</a>' in body
    assert "Started" in body


@pytest.fixture
def viewer_client(cast):
    return cast["viewer"]


def test_a_transition_path_to_another_host_is_not_a_link(viewer_client, rule):
    Transition.objects.create(
        rule=rule, subject="system", sequence=1, kind=TransitionKind.FIRED,
        summary="Elsewhere", path="//evil.example/",
    )  # fmt: skip
    body = _body(viewer_client.get(reverse("alert-list")))
    assert "evil.example" not in body and "Elsewhere" in body


def test_viewers_and_runners_change_nothing(cast, rule, channel):
    mute = Mute.objects.create(rule=rule, reason="noisy")
    posts = [
        (reverse("alert-rule-new"), {"name": "x", "condition": "streak"}),
        (reverse("alert-rule-edit", args=[rule.pk]), {"name": "x", "condition": "streak"}),
        (reverse("alert-rule-delete", args=[rule.pk]), {}),
        (reverse("alert-rule-toggle", args=[rule.pk]), {}),
        (reverse("alert-rule-snooze", args=[rule.pk]), {}),
        (reverse("alert-mute-new"), {"rule": rule.pk}),
        (reverse("alert-mute-delete", args=[mute.pk]), {}),
        (reverse("alert-channel-new"), {"name": "x", "kind": "notify", "url": "slack://a/b/c"}),
        (reverse("alert-channel-edit", args=[channel.pk]), {"name": "x", "kind": "notify"}),
        (reverse("alert-channel-delete", args=[channel.pk]), {}),
        (reverse("alert-channel-test", args=[channel.pk]), {}),
    ]
    for who, client in cast.items():
        for url, data in posts:
            response = client.post(url, data)
            assert response.status_code == 403, (who, url)
            assert "Support lead" in _body(response)
        for name in ("alert-channel-list", "alert-delivery-list", "alert-channel-new"):
            assert client.get(reverse(name)).status_code == 403, (who, name)
    rule.refresh_from_db()
    assert rule.name == "Streaks" and rule.enabled
    assert Mute.objects.count() == 1 and Channel.objects.count() == 1
    assert not Delivery.objects.exists()


# --- rules ---


def test_a_lead_adds_a_rule_with_the_conditions_default_threshold(lead_client, channel):
    acme = make_company(name="Acme Ltd")
    globex = make_company(name="Globex Inc")
    response = lead_client.post(
        reverse("alert-rule-new"),
        {
            "name": "Failing streaks",
            "condition": "streak",
            "threshold": "",
            "min_syncs": "10",
            "hold_minutes": "5",
            "channels": [channel.pk],
            "companies_text": f"Acme Ltd\n{globex.name} ({globex.company_id})\n",
            "digest": "",
            "enabled": "on",
        },
    )
    rule = Rule.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("alert-rule-detail", args=[rule.pk])
    assert rule.threshold == 3
    assert set(rule.companies.all()) == {acme, globex}
    assert list(rule.channels.all()) == [channel]
    edit = _body(lead_client.get(reverse("alert-rule-edit", args=[rule.pk])))
    assert f"Acme Ltd ({acme.company_id})" in edit


def test_a_condition_without_a_threshold_ignores_one(lead_client):
    lead_client.post(
        reverse("alert-rule-new"),
        {"name": "New", "condition": "problem_new", "threshold": "40", "min_syncs": "10",
         "hold_minutes": "0", "enabled": "on"},
    )  # fmt: skip
    assert Rule.objects.get().threshold is None


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("threshold", "0", "Between 1 and 10080"),
        ("threshold", "abc", "Enter a whole number"),
        ("condition", "nonsense", "Select a valid choice"),
        ("hold_minutes", "99999", "less than or equal to 1440"),
        ("companies_text", "No Such Company", "No company is named"),
        ("companies_text", "00000000-0000-0000-0000-000000000001", "No company has the ID"),
        ("name", "", "This field is required"),
    ],
)
def test_a_rule_form_with_bad_input_says_why(lead_client, db, field, value, says):
    data = {"name": "R", "condition": "streak", "threshold": "3", "min_syncs": "10",
            "hold_minutes": "5", "enabled": "on", field: value}  # fmt: skip
    response = lead_client.post(reverse("alert-rule-new"), data)
    assert response.status_code == 400
    assert says in _body(response)
    assert not Rule.objects.exists()


def test_a_platform_success_rule_stops_at_a_hundred_percent(lead_client, db):
    data = {"name": "R", "condition": "platform_success", "threshold": "101",
            "min_syncs": "10", "hold_minutes": "5"}  # fmt: skip
    response = lead_client.post(reverse("alert-rule-new"), data)
    assert response.status_code == 400 and "Between 1 and 100 (% success)" in _body(response)


def test_a_lead_turns_a_rule_off_snoozes_it_and_deletes_it(lead_client, rule):
    lead_client.post(reverse("alert-rule-toggle", args=[rule.pk]))
    rule.refresh_from_db()
    assert not rule.enabled
    later = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    lead_client.post(reverse("alert-rule-snooze", args=[rule.pk]), {"until": later})
    rule.refresh_from_db()
    assert rule.snoozed_until is not None and rule.snoozed_until > timezone.now()
    past = lead_client.post(
        reverse("alert-rule-snooze", args=[rule.pk]), {"until": "2001-01-01T00:00"}
    )
    assert past.status_code == 302
    page = _body(lead_client.get(past["Location"]))
    assert "Not snoozed: Pick a time in the future." in page
    lead_client.post(reverse("alert-rule-snooze", args=[rule.pk]), {"until": ""})
    rule.refresh_from_db()
    assert rule.snoozed_until is None
    assert lead_client.get(reverse("alert-rule-delete", args=[rule.pk])).status_code == 200
    lead_client.post(reverse("alert-rule-delete", args=[rule.pk]))
    assert not Rule.objects.exists()


def test_the_rule_page_pages_its_transitions_and_refuses_a_bad_page_link(lead_client, rule):
    for n in range(30):
        Transition.objects.create(
            rule=rule, subject="system", sequence=n + 1, kind=TransitionKind.FIRED,
            summary=f"change {n}",
        )  # fmt: skip
    url = reverse("alert-rule-detail", args=[rule.pk])
    first = _body(lead_client.get(url))
    assert "change 29" in first and "change 4" not in first.replace("change 4<", "")
    assert "change 3<" not in first
    older = first.split('data-testid="older" ', 1)[0].rsplit('href="', 1)[1].split('"')[0]
    assert "change 3<" in _body(lead_client.get(url + older.split("#")[0]))
    bad = lead_client.get(url + "?before=zzz")
    assert bad.status_code == 400 and "That page link is not valid" in _body(bad)


# --- mutes ---


def test_a_lead_mutes_a_company_from_its_page_and_removes_the_mute(lead_client, db):
    company = make_company(name="Acme Ltd")
    page = reverse("company-detail", args=[company.company_id])
    assert 'data-testid="mute-control"' in _body(lead_client.get(page))
    response = lead_client.post(
        reverse("alert-mute-new"),
        {"company": str(company.company_id), "reason": "migrating", "next": page},
    )
    assert response.status_code == 302 and response["Location"] == page
    mute = Mute.objects.get()
    assert mute.company == company and mute.until is None and mute.rule is None
    listed = _body(lead_client.get(reverse("alert-list")))
    assert "migrating" in listed
    lead_client.post(reverse("alert-mute-delete", args=[mute.pk]))
    assert not Mute.objects.exists()


def test_a_problem_page_offers_leads_a_mute_and_viewers_none(lead_client, cast, db):
    problem = problem_of(make_sync(make_company(), code=5130, items=[(4, "Period closed")]))
    page = reverse("problem-detail", args=[problem.pk])
    assert 'data-testid="mute-control"' in _body(lead_client.get(page))
    assert 'data-testid="mute-control"' not in _body(cast["viewer"].get(page))
    later = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    lead_client.post(reverse("alert-mute-new"), {"problem": problem.pk, "until": later})
    assert Mute.objects.get().problem == problem


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({}, "Say what to mute"),
        ({"problem": "999999"}, "There is no problem #999999"),
        ({"company": "Nobody Inc"}, "No company is named"),
        ({"rule": "abc"}, "Select a valid choice"),
        ({"problem": "1", "until": "yesterday"}, "Enter a valid date/time"),
        ({"company": "x", "next": "https://evil.example/"}, "No company is named"),
    ],
)
def test_a_mute_with_bad_input_says_why(lead_client, db, data, says):
    response = lead_client.post(reverse("alert-mute-new"), data)
    assert response.status_code == 400 and says in _body(response)
    assert not Mute.objects.exists()


def test_a_mute_never_sends_the_lead_to_another_site(lead_client, rule):
    response = lead_client.post(
        reverse("alert-mute-new"), {"rule": rule.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("alert-list")


# --- channels ---


def _channel_data(**fields: str) -> dict[str, str]:
    return {"name": "Receiver", "kind": "notify", "enabled": "on", **fields}


def test_a_channel_url_and_secret_never_come_back_in_any_response(
    lead_client, public_dns, admin_client
):
    create = _body(lead_client.get(reverse("alert-channel-new")))
    offered = create.split('name="signing_secret" value="', 1)[1].split('"', 1)[0]
    assert offered.startswith("whsec_")
    response = lead_client.post(
        reverse("alert-channel-new"),
        _channel_data(
            name="Signed", kind="signed_webhook",
            url=f"https://hooks.example.com/in?token={TOKEN}", signing_secret=offered,
        ),
    )  # fmt: skip
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.url.endswith(TOKEN) and channel.signing_secret == offered
    assert channel.display == "https://hooks.example.com"
    assert TOKEN not in channel.url_encrypted and offered not in channel.signing_secret_encrypted
    Delivery.objects.create(
        kind=DeliveryKind.TEST, channel=channel, title="Test", body="b",
        state=DeliveryState.FAILED, last_error="refused by hooks.example.com",
    )  # fmt: skip
    pages = [
        lead_client.get(reverse("alert-channel-list")),
        lead_client.get(reverse("alert-channel-edit", args=[channel.pk])),
        lead_client.get(reverse("alert-delivery-list")),
        lead_client.get(reverse("alert-list")),
        lead_client.post(
            reverse("alert-channel-edit", args=[channel.pk]),
            _channel_data(name="", kind="signed_webhook"),
        ),
        admin_client.get(reverse("admin:alerts_channel_change", args=[channel.pk])),
        admin_client.get(reverse("admin:alerts_channel_changelist")),
    ]
    for page in pages:
        assert page.status_code in (200, 400)
        body = _body(page)
        assert TOKEN not in body and offered not in body
        assert offered.removeprefix("whsec_") not in body


def test_a_blank_url_and_secret_on_edit_keep_what_was_saved(lead_client, channel):
    before = channel.url
    response = lead_client.post(
        reverse("alert-channel-edit", args=[channel.pk]), _channel_data(name="Renamed", url="")
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Renamed" and channel.url == before


def test_the_offered_secret_is_one_svix_signs_and_verifies_with():
    secret = new_signing_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    hook = Webhook(secret)
    now = timezone.now()
    signature = hook.sign("msg_1", now, '{"a": 1}')
    hook.verify(
        '{"a": 1}',
        {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
         "webhook-signature": signature},
    )  # fmt: skip


@pytest.mark.parametrize(
    "url", ["json://127.0.0.1:9/hook", "https://10.0.0.1/hook", "json://169.254.169.254/"]
)
def test_a_channel_to_an_internal_address_is_refused_on_the_form(lead_client, db, url, settings):
    settings.ALERTS_ALLOWED_NETWORKS = []
    response = lead_client.post(reverse("alert-channel-new"), _channel_data(url=url))
    body = _body(response)
    assert response.status_code == 400
    assert "non-public address" in body and 'data-testid="error-url"' in body
    assert not Channel.objects.exists()


def test_an_allow_listed_network_is_accepted(lead_client, db, settings):
    settings.ALERTS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    response = lead_client.post(
        reverse("alert-channel-new"), _channel_data(url="json://127.0.0.1:9/hook")
    )
    assert response.status_code == 302
    assert Channel.objects.get().display == "json://127.0.0.1:9"


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"url": ""}, "Give the destination URL"),
        ({"url": "file:///etc/passwd"}, "not a supported destination"),
        ({"url": "not a url"}, "A URL has no spaces"),
        ({"kind": "signed_webhook", "url": "json://hooks.example.com/x"}, "https://"),
        (
            {
                "kind": "signed_webhook",
                "url": "https://hooks.example.com/x",
                "signing_secret": "whsec_short",
            },
            "whsec_ followed by base64",
        ),
        ({"kind": "nonsense", "url": "https://hooks.example.com/x"}, "Select a valid choice"),
        ({"name": "x" * 101, "url": "https://hooks.example.com/x"}, "at most 100 characters"),
    ],
)
def test_a_channel_form_with_bad_input_says_why(lead_client, public_dns, db, fields, says):
    response = lead_client.post(reverse("alert-channel-new"), _channel_data(**fields))
    assert response.status_code == 400 and says in _body(response)
    assert not Channel.objects.exists()


def test_send_test_makes_a_delivery_and_the_log_polls_it_until_it_ends(
    lead_client, channel, monkeypatch
):
    from alerts import delivery

    monkeypatch.setattr(delivery, "_enqueue", lambda pk: None)
    response = lead_client.post(reverse("alert-channel-test", args=[channel.pk]))
    made = Delivery.objects.get()
    assert made.kind == DeliveryKind.TEST and made.channel == channel
    assert response.status_code == 302
    assert response["Location"].startswith(
        reverse("alert-delivery-list") + f"?channel={channel.pk}"
    )
    log = _body(lead_client.get(response["Location"]))
    assert f'id="delivery-{made.pk}"' in log and "hx-get" in log
    row = lead_client.get(
        reverse("alert-delivery-list") + f"?delivery={made.pk}", headers={"HX-Request": "true"}
    )
    assert row.status_code == 200 and "Pending" in _body(row)
    Delivery.objects.filter(pk=made.pk).update(state=DeliveryState.DELIVERED)
    done = lead_client.get(
        reverse("alert-delivery-list") + f"?delivery={made.pk}", headers={"HX-Request": "true"}
    )
    assert done.status_code == 286 and "Delivered" in _body(done) and "hx-get" not in _body(done)


@pytest.mark.parametrize("query", ["?state=bogus", "?channel=999999", "?channel=abc", "?before=-1"])
def test_a_bad_delivery_log_filter_says_why(lead_client, db, query):
    response = lead_client.get(reverse("alert-delivery-list") + query)
    assert response.status_code == 400 and 'class="error"' in _body(response)


def test_the_delivery_log_filters_by_state_and_channel(lead_client, channel):
    other = Channel.objects.create(name="Other", display="slack")
    for made, state in [(channel, "failed"), (channel, "delivered"), (other, "failed")]:
        Delivery.objects.create(
            kind=DeliveryKind.TEST, channel=made, title=f"{made.name} {state}", body="", state=state
        )
    body = _body(
        lead_client.get(reverse("alert-delivery-list") + f"?state=failed&channel={channel.pk}")
    )
    assert "Ops Slack failed" in body
    assert "Ops Slack delivered" not in body and "Other failed" not in body


# --- escaping ---


def test_hostile_names_summaries_and_errors_show_as_text(lead_client, channel):
    channel.name = HOSTILE
    channel.last_error = HOSTILE
    channel.failing_since = timezone.now() - timedelta(hours=1)
    channel.save()
    rule = Rule.objects.create(name=HOSTILE, condition=Condition.STREAK, threshold=3)
    rule.channels.add(channel)
    AlertState.objects.create(rule=rule, subject="system", label=HOSTILE, state=SubjectState.FIRING)
    Transition.objects.create(
        rule=rule, subject="system", sequence=1, kind=TransitionKind.FIRED, summary=HOSTILE
    )
    Mute.objects.create(rule=rule, reason=HOSTILE)
    Delivery.objects.create(
        kind=DeliveryKind.TEST, channel=channel, rule=rule, title=HOSTILE, body="",
        last_error=HOSTILE,
    )  # fmt: skip
    for url in [
        reverse("alert-list"),
        reverse("alert-rule-detail", args=[rule.pk]),
        reverse("alert-rule-edit", args=[rule.pk]),
        reverse("alert-channel-list"),
        reverse("alert-channel-edit", args=[channel.pk]),
        reverse("alert-delivery-list"),
        reverse("summary"),
    ]:
        body = _body(lead_client.get(url))
        assert "<script>alert" not in body, url
        assert "&lt;script&gt;" in body, url


# --- the dashboard ---


def test_the_dashboard_warns_of_a_channel_failing_for_a_while_and_counts_firing(
    lead_client, cast, rule, channel
):
    assert 'data-testid="channel-failing"' not in _body(lead_client.get(reverse("summary")))
    channel.failing_since = timezone.now() - timedelta(minutes=5)
    channel.save()
    assert 'data-testid="channel-failing"' not in _body(lead_client.get(reverse("summary")))
    channel.failing_since = timezone.now() - timedelta(minutes=20)
    channel.save()
    AlertState.objects.create(rule=rule, subject="system", state=SubjectState.FIRING)
    lead = _body(lead_client.get(reverse("summary")))
    assert "Alerts to <strong>Ops Slack</strong> have failed since" in lead
    assert reverse("alert-delivery-list") in lead
    assert "1 alert firing" in lead
    viewer = _body(cast["viewer"].get(reverse("summary")))
    assert "tell a support lead" in viewer and reverse("alert-delivery-list") not in viewer
    channel.enabled = False
    channel.save()
    assert 'data-testid="channel-failing"' not in _body(lead_client.get(reverse("summary")))
