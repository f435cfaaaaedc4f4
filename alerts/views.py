"""Pages of the alerts: what is firing, the rules (and one rule's subjects and
transitions), and the mutes.

Every support role reads them (the middleware asks for the read permission, as
for every page). Changing a rule or a mute needs `alerts.manage_alerts`
(leads), checked here on the server whatever the page showed; each change is a
POST with its CSRF token. Channels and the delivery log are in
`alerts.channel_views`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.roles import ALERTS_PERMISSION, LEAD, RoleRequired

from . import selectors
from .forms import MuteForm, PageForm, RuleForm, SnoozeForm
from .models import Mute, Rule
from .vocabulary import THRESHOLD

ADVICE = "Everyone reads the alerts; a support lead sets up rules, channels and mutes."


def may_manage(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(ALERTS_PERMISSION):
        raise RoleRequired(LEAD, action, advice=ADVICE)


def _thresholds() -> list[tuple[str, str, int]]:
    """(condition, meaning, default) for the conditions that take a number."""
    return [(c, spec[0], spec[1]) for c, spec in THRESHOLD.items() if spec]


@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    context = {
        "firing": selectors.firing_now(),
        "transitions": selectors.recent_transitions(),
        "rules": selectors.rules(),
        "mutes": selectors.active_mutes(now),
        "may_manage": request.user.has_perm(ALERTS_PERMISSION),
        "now": now,
    }
    return render(request, "alerts/overview.html", context)


# --- rules ---


def _rule_form_page(request: HttpRequest, form: RuleForm, *, status: int = 200) -> HttpResponse:
    context = {"form": form, "rule": form.instance if form.instance.pk else None}
    context["thresholds"] = _thresholds()
    return render(request, "alerts/rule_form.html", context, status=status)


@require_http_methods(["GET", "POST"])
def rule_new(request: HttpRequest) -> HttpResponse:
    may_manage(request, "add an alert rule")
    if request.method == "POST":
        form = RuleForm(request.POST, instance=Rule(created_by_id=request.user.pk))
        if form.is_valid():
            rule = form.save()
            messages.success(request, f"Rule “{rule.name}” added.")
            return HttpResponseRedirect(reverse("alert-rule-detail", args=[rule.pk]))
        return _rule_form_page(request, form, status=400)
    return _rule_form_page(request, RuleForm(initial={"hold_minutes": 5}))


@require_GET
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(selectors.rules(), pk=pk)
    now = timezone.now()
    page_form = PageForm(request.GET)
    valid = page_form.is_valid()
    before = page_form.cleaned_data.get("before") if valid else None
    context: dict[str, Any] = {
        "rule": rule,
        "states": selectors.rule_states(rule),
        "transitions": selectors.rule_transitions(rule, before=before),
        "is_first_page": before is None,
        "page_form": page_form,
        "mutes": selectors.active_mutes(now, rule=rule),
        "now": now,
        "may_manage": request.user.has_perm(ALERTS_PERMISSION),
        "snooze_form": SnoozeForm(),
    }
    return render(request, "alerts/rule_detail.html", context, status=200 if valid else 400)


@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    may_manage(request, "change an alert rule")
    if request.method == "POST":
        form = RuleForm(request.POST, instance=rule)
        if form.is_valid():
            form.save()
            messages.success(request, f"Rule “{rule.name}” saved.")
            return HttpResponseRedirect(reverse("alert-rule-detail", args=[rule.pk]))
        return _rule_form_page(request, form, status=400)
    return _rule_form_page(request, RuleForm(instance=rule))


@require_http_methods(["GET", "POST"])
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    may_manage(request, "delete an alert rule")
    if request.method == "POST":
        rule.delete()
        messages.success(request, f"Rule “{rule.name}” deleted, with its history.")
        return HttpResponseRedirect(reverse("alert-list"))
    context = {
        "what": f"the rule “{rule.name}”",
        "consequence": "Its subjects' states, transitions and mutes go with it.",
        "action": reverse("alert-rule-delete", args=[rule.pk]),
        "back": reverse("alert-rule-detail", args=[rule.pk]),
    }
    return render(request, "alerts/confirm_delete.html", context)


@require_POST
def rule_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    may_manage(request, "turn an alert rule on or off")
    rule.enabled = not rule.enabled
    rule.updated_at = timezone.now()
    rule.save(update_fields=["enabled", "updated_at"])
    state = "on" if rule.enabled else "off"
    messages.success(request, f"Rule “{rule.name}” turned {state}.")
    return HttpResponseRedirect(reverse("alert-rule-detail", args=[rule.pk]))


@require_POST
def rule_snooze(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(Rule, pk=pk)
    may_manage(request, "snooze an alert rule")
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Not snoozed: {error}")
        return HttpResponseRedirect(reverse("alert-rule-detail", args=[rule.pk]))
    rule.snoozed_until = form.cleaned_data["until"]
    rule.updated_at = timezone.now()
    rule.save(update_fields=["snoozed_until", "updated_at"])
    if rule.snoozed_until:
        local = timezone.localtime(rule.snoozed_until)
        messages.success(request, f"Rule “{rule.name}” snoozed until {local:%Y-%m-%d %H:%M %Z}.")
    else:
        messages.success(request, f"Rule “{rule.name}” is no longer snoozed.")
    return HttpResponseRedirect(reverse("alert-rule-detail", args=[rule.pk]))


# --- mutes ---


@require_http_methods(["GET", "POST"])
def mute_new(request: HttpRequest) -> HttpResponse:
    """The form (prefilled from the query: a rule, a company, a problem), and the mute."""
    may_manage(request, "mute alerts")
    if request.method == "POST":
        form = MuteForm(request.POST)
        if form.is_valid():
            mute = form.mute(user=request.user)
            messages.success(request, f"Muted {_named(mute)} until {_until(mute)}.")
            target = form.cleaned_data["next"] or reverse("alert-list")
            if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
                target = reverse("alert-list")
            return HttpResponseRedirect(target)
        status = 400
    else:
        form = MuteForm(initial=_mute_initial(request))
        status = 200
    return render(request, "alerts/mute_form.html", {"form": form}, status=status)


def _mute_initial(request: HttpRequest) -> dict[str, str]:
    # Shown in the form as it is: the form checks it when it is posted.
    return {k: request.GET.get(k, "")[:600] for k in ("rule", "company", "problem", "next")}


def _named(mute: Mute) -> str:
    return str(mute).removeprefix("Mute: ")


def _until(mute: Mute) -> str:
    if mute.until is None:
        return "removed"
    return f"{timezone.localtime(mute.until):%Y-%m-%d %H:%M %Z}"


@require_POST
def mute_delete(request: HttpRequest, pk: int) -> HttpResponse:
    mute = get_object_or_404(Mute, pk=pk)
    may_manage(request, "remove a mute")
    mute.delete()
    messages.success(request, f"Mute of {_named(mute)} removed: its alerts are sent again.")
    return HttpResponseRedirect(reverse("alert-list") + "#mutes")
