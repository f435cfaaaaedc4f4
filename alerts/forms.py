"""Forms of the alerts pages (and the admin's channel form): every input checked here.

A channel's URL and signing secret are write-only: the inputs never render a
stored (or typed) URL, and an edit left blank keeps what was saved. The URL is
checked by `alerts.netguard` before it is stored, so a lead cannot point the
worker at an internal address.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from datetime import datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.utils import timezone

from dashboard.models import Company, Problem
from dashboard.platforms import platform_names

from .channels import describe
from .models import Channel, Mute, Rule
from .netguard import RefusedDestination, check_destination
from .selectors import DeliveryFilter
from .vocabulary import THRESHOLD, ChannelKind, Condition, DeliveryState

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
URL_MAX = 2000
COMPANIES_MAX = 500
# Percentages stop at 100; a count or a number of minutes at a week's worth.
THRESHOLD_MAX = {Condition.PLATFORM_SUCCESS: 100}
THRESHOLD_MAX_DEFAULT = 10_080
UUID_IN_LINE = re.compile(r"([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})")
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]


def new_signing_secret() -> str:
    """A secret in the Standard Webhooks form svix generates: whsec_ + base64 of 24 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def threshold_meaning(condition: str) -> str:
    """What the rule's number means, in words ('' for a condition that takes none)."""
    spec = THRESHOLD.get(condition)
    return spec[0] if spec else ""


class WriteOnlyInput(forms.TextInput):
    """A text input that never renders a value: what was typed or stored stays off the page."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})

    def format_value(self, value: Any) -> None:
        return None


class LocalDateTimeField(forms.DateTimeField):
    """A time picked in the browser, read in the person's zone (the middleware's)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", DATETIME_FORMATS)
        kwargs.setdefault(
            "widget",
            forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        )
        super().__init__(**kwargs)


def _future(value: datetime | None) -> datetime | None:
    if value is not None and value <= timezone.now():
        raise ValidationError("Pick a time in the future.")
    return value


# --- rules ---


class RuleForm(forms.ModelForm):
    companies_text = forms.CharField(
        required=False,
        label="Companies",
        help_text="One company a line, by ID or exact name. Empty: every company.",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        max_length=COMPANIES_MAX * 600,
    )
    platforms = forms.MultipleChoiceField(
        required=False,
        label="Accounting platforms",
        help_text="None ticked: every platform.",
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Rule
        fields = [
            "name",
            "condition",
            "threshold",
            "min_syncs",
            "hold_minutes",
            "channels",
            "platforms",
            "digest",
            "enabled",
        ]
        widgets = {"channels": forms.CheckboxSelectMultiple}
        labels = {
            "min_syncs": "Fewest syncs in the hour",
            "hold_minutes": "Hold (minutes)",
            "digest": "Send",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rule: Rule = self.instance
        self.fields["threshold"].help_text = "Left empty: the condition's default."
        for name, most in (("hold_minutes", 1440), ("min_syncs", 100_000)):
            self.fields[name].validators.append(MaxValueValidator(most))
            self.fields[name].widget.attrs["max"] = most
        channels = self.fields["channels"]
        assert isinstance(channels, forms.ModelMultipleChoiceField)
        channels.queryset = Channel.objects.order_by("name")
        chosen = list(rule.platforms or []) if rule.pk else []
        names = sorted({*platform_names(), *chosen})
        platforms = self.fields["platforms"]
        assert isinstance(platforms, forms.MultipleChoiceField)
        platforms.choices = [(name, name) for name in names]
        if self.is_bound and any(p not in names for p in self["platforms"].value() or []):
            platforms.choices = [(n, n) for n in sorted({*platform_names(fresh=True), *chosen})]
        if rule.pk:
            named = rule.companies.order_by("name", "pk")[: COMPANIES_MAX + 1]
            self.initial["companies_text"] = "\n".join(f"{c.name} ({c.company_id})" for c in named)
        self.companies: list[Company] = []

    def clean_companies_text(self) -> str:
        text = self.cleaned_data.get("companies_text") or ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > COMPANIES_MAX:
            raise ValidationError(
                f"At most {COMPANIES_MAX} companies a rule: for more, cover every company "
                "and mute the ones to leave out."
            )
        self.companies = resolve_companies(lines)
        return text

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        condition = data.get("condition")
        if condition is None:
            return data
        spec = THRESHOLD.get(condition)
        if spec is None:
            data["threshold"] = None
        else:
            meaning, default = spec
            threshold = data.get("threshold")
            if threshold is None:
                data["threshold"] = default
            else:
                most = THRESHOLD_MAX.get(condition, THRESHOLD_MAX_DEFAULT)
                if not 1 <= threshold <= most:
                    self.add_error(
                        "threshold", f"Between 1 and {most} ({meaning}); the default is {default}."
                    )
        return data

    def save(self, commit: bool = True) -> Rule:
        rule: Rule = super().save(commit=False)
        rule.threshold = self.cleaned_data["threshold"]
        rule.updated_at = timezone.now()
        if commit:
            rule.save()
            self.save_m2m()
            rule.companies.set(self.companies)
        return rule


def resolve_companies(lines: list[str]) -> list[Company]:
    """The companies the lines name, by ID (anywhere in the line) or else by exact name."""
    by_id: list[uuid.UUID] = []
    by_name: list[str] = []
    for line in lines:
        found = UUID_IN_LINE.search(line)
        if found:
            by_id.append(uuid.UUID(found.group(1)))
        else:
            by_name.append(line[:500])
    errors: list[str] = []
    companies: dict[int, Company] = {}
    if by_id:
        known = {c.company_id: c for c in Company.objects.filter(company_id__in=by_id)}
        for wanted in by_id:
            if wanted in known:
                companies[known[wanted].pk] = known[wanted]
            else:
                errors.append(f"No company has the ID {wanted}.")
    if by_name:
        matches: dict[str, list[Company]] = {}
        for company in Company.objects.filter(name__in=by_name):
            matches.setdefault(company.name, []).append(company)
        for name in by_name:
            found_named = matches.get(name, [])
            if not found_named:
                errors.append(f"No company is named “{name}” (names must match exactly).")
            elif len(found_named) > 1:
                errors.append(f"{len(found_named)} companies are named “{name}”: give its ID.")
            else:
                companies[found_named[0].pk] = found_named[0]
    if errors:
        raise ValidationError(errors[:20])
    return list(companies.values())


class SnoozeForm(forms.Form):
    until = LocalDateTimeField(
        required=False, label="Snooze until", help_text="Empty: end the snooze now."
    )

    def clean_until(self) -> datetime | None:
        return _future(self.cleaned_data.get("until"))


# --- channels ---


class ChannelForm(forms.ModelForm):
    """A channel, its destination and its secret written but never shown (the admin's too)."""

    url = forms.CharField(
        label="Destination URL",
        max_length=URL_MAX,
        required=False,
        widget=WriteOnlyInput(attrs={"placeholder": "slack://…, mailto://…, json://…, https://…"}),
        help_text="Notification URL: any the notification library knows (e-mail, Slack, "
        "Teams, Discord, PagerDuty, json:// webhooks, …). Signed webhook: an https:// "
        "address. Never shown again after saving.",
    )
    signing_secret = forms.CharField(
        label="Signing secret",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Signed webhooks: copy it to the receiver before saving; it is never shown "
        "again.",
    )

    class Meta:
        model = Channel
        fields = ["name", "kind", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.editing = self.instance.pk is not None
        secret = self.fields["signing_secret"]
        if self.editing:
            self.fields["url"].help_text = "Leave blank to keep the current destination."
            secret.widget = WriteOnlyInput()
            secret.help_text = (
                "Leave blank to keep the current secret; paste a new whsec_… one to replace it."
            )
        elif not self.is_bound:
            self.initial["signing_secret"] = new_signing_secret()
        self.fields["name"].widget.attrs["autocomplete"] = "off"

    def clean_url(self) -> str:
        url = (self.cleaned_data.get("url") or "").strip()
        if not url:
            if not self.editing:
                raise ValidationError("Give the destination URL.")
            return ""
        if any(ch.isspace() for ch in url):
            raise ValidationError("A URL has no spaces in it.")
        try:
            check_destination(url)
        except RefusedDestination as exc:
            raise ValidationError(str(exc)) from exc
        return url

    def clean_signing_secret(self) -> str:
        secret = (self.cleaned_data.get("signing_secret") or "").strip()
        if not secret:
            return ""
        encoded = secret.removeprefix(SECRET_PREFIX)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not secret.startswith(SECRET_PREFIX) or not 24 <= len(raw) <= 64:
            raise ValidationError(
                "A signing secret is whsec_ followed by base64 of 24 to 64 random bytes."
            )
        return secret

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = data.get("url") or ""
        signed = data.get("kind") == ChannelKind.SIGNED_WEBHOOK
        if signed and url and not url.lower().startswith(("https://", "http://")):
            self.add_error("url", "A signed webhook is sent to an https:// (or http://) address.")
        kept = self.editing and self.instance.signing_secret_encrypted
        if signed and not (data.get("signing_secret") or kept or "signing_secret" in self.errors):
            self.add_error("signing_secret", "A signed webhook needs a signing secret.")
        return data

    def save(self, commit: bool = True) -> Channel:
        channel: Channel = super().save(commit=False)
        url = self.cleaned_data.get("url") or ""
        if url:
            channel.url = url
            channel.display = describe(url)[:300]
        secret = self.cleaned_data.get("signing_secret") or ""
        if secret and channel.kind == ChannelKind.SIGNED_WEBHOOK:
            channel.signing_secret = secret
        channel.updated_at = timezone.now()
        if commit:
            channel.save()
        return channel


# --- mutes ---


class MuteForm(forms.Form):
    rule = forms.ModelChoiceField(
        queryset=Rule.objects.order_by("name", "pk"),
        required=False,
        empty_label="Every rule",
        label="Rule",
    )
    company = forms.CharField(
        required=False,
        max_length=600,
        label="Company",
        help_text="Its ID or exact name; empty for none.",
    )
    problem = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, label="Problem #"
    )
    until = LocalDateTimeField(required=False, label="Until", help_text="Empty: until removed.")
    reason = forms.CharField(required=False, max_length=300, label="Why")
    next = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)

    def clean_until(self) -> datetime | None:
        return _future(self.cleaned_data.get("until"))

    def clean_company(self) -> Company | None:
        text = (self.cleaned_data.get("company") or "").strip()
        return resolve_companies([text])[0] if text else None

    def clean_problem(self) -> Problem | None:
        number = self.cleaned_data.get("problem")
        if number is None:
            return None
        problem = Problem.objects.filter(pk=number).first()
        if problem is None:
            raise ValidationError(f"There is no problem #{number}.")
        return problem

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not any(data.get(k) for k in ("rule", "company", "problem")):
            raise ValidationError("Say what to mute: a rule, a company or a problem.")
        return data

    def mute(self, *, user: Any) -> Mute:
        data = self.cleaned_data
        return Mute.objects.create(
            rule=data["rule"],
            company=data["company"],
            problem=data["problem"],
            until=data["until"],
            reason=data["reason"],
            created_by=user,
        )


# --- reads ---


class PageForm(forms.Form):
    """A log's page: `before` is the last row the previous page showed."""

    before = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        error_messages={"invalid": "That page link is not valid; start from the first page."},
    )


class DeliveryFilterForm(PageForm):
    state = forms.ChoiceField(
        choices=[("", "Any"), *DeliveryState.choices], required=False, label="State"
    )
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.order_by("name"),
        required=False,
        empty_label="Any",
        label="Channel",
        error_messages={"invalid_choice": "There is no such channel."},
    )
    delivery = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def filters(self) -> DeliveryFilter:
        data = self.cleaned_data
        channel = data.get("channel")
        return DeliveryFilter(
            state=data.get("state") or "",
            channel_id=channel.pk if channel else None,
            delivery_id=data.get("delivery"),
            before=data.get("before"),
        )
