"""A problem's remediation steps and the message its customers get, with their defaults.

A problem without a playbook of its own shows its status code's note (what it
means, what to do next); one without a customer message gets its code's
default below. A message names its company, sync and cause through
placeholders (`{company_name}`, …), filled by a plain replacement of those
names: what a person typed is never evaluated, and a placeholder we do not
know stays as it was typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from ..vocabulary import Code, note_for

PLACEHOLDERS = ("company_name", "sync_id", "sync_date", "cause", "reconnect_link")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
NO_RECONNECT_LINK = "(no reconnect link from Codat for this company)"

_RECONNECT = (
    "Hello {company_name} team,\n\n"
    "{situation} Until it is connected again, your expenses cannot be sent to it: the "
    "latest attempt (sync {sync_id}, {sync_date}) did not go through.\n\n"
    "Please reconnect it with this link:\n{reconnect_link}\n\n"
    "Once it is connected, we will send the waiting expenses again; nothing is lost in "
    "the meantime.\n"
)

DEFAULT_MESSAGES: dict[int, str] = {
    Code.COMPANY_DELETED: _RECONNECT.replace(
        "{situation}", "Your accounting software is no longer connected to us."
    ),
    Code.COMPANY_DEAUTHORIZED: _RECONNECT.replace(
        "{situation}",
        "The connection between your account and your accounting software was "
        "de-authorized, so we no longer have permission to write to it.",
    ),
    Code.BILLING_EXPIRED: (
        "Hello {company_name} team,\n\n"
        "Your accounting software refused our latest sync (sync {sync_id}, {sync_date}) "
        "because its subscription appears to have expired.\n\n"
        "Please renew your subscription with your accounting software provider, then let us "
        "know: we will send the waiting expenses again. Nothing is lost in the meantime.\n"
    ),
    Code.CONFIGURATION_ERROR: (
        "Hello {company_name} team,\n\n"
        "Your expenses could not be sent to your accounting software (sync {sync_id}, "
        "{sync_date}) because the sync settings refer to something it no longer has, such as "
        "a bank account, an expense account or a tax rate.\n\n"
        "The accounting software said: {cause}\n\n"
        "Please check the account and category mapping in your expense settings against your "
        "accounting software, and update it. Then let us know and we will send the waiting "
        "expenses again.\n"
    ),
    Code.DATA_PUSH_ERROR: (
        "Hello {company_name} team,\n\n"
        "Your accounting software refused some of your expenses in sync {sync_id} "
        "({sync_date}).\n\n"
        "The reason it gave: {cause}\n\n"
        "This is usually fixed in the accounting software itself (for example by reopening a "
        "closed period, or adding a missing tax rate or account). Once it is fixed, let us "
        "know and we will send those expenses again.\n"
    ),
    Code.DATA_PROCESSING_ERROR: (
        "Hello {company_name} team,\n\n"
        "Some of your expenses could not be processed in sync {sync_id} ({sync_date}), so "
        "they were not sent to your accounting software.\n\n"
        "The reason: {cause}\n\n"
        "Please check those expenses (for example their amounts, dates and categories) and "
        "correct them. Once they are corrected we will send them again.\n"
    ),
}
GENERIC_MESSAGE = (
    "Hello {company_name} team,\n\n"
    "Some of your expenses could not be sent to your accounting software in sync {sync_id} "
    "({sync_date}).\n\n"
    "The reason: {cause}\n\n"
    "We are looking into it and will let you know when they have been sent, or if we need "
    "anything from you.\n"
)


def default_playbook(code: int) -> str:
    """A code's note as the steps to follow (Markdown)."""
    note = note_for(code)
    return f"{note.meaning}\n\n**Next step:** {note.next_step}"


def default_message(code: int) -> str:
    return DEFAULT_MESSAGES.get(code, GENERIC_MESSAGE)


@dataclass(frozen=True)
class Filled:
    """A customer message for one company: its text, and the values that went in."""

    text: str
    values: dict[str, str]


def fill(
    template: str,
    *,
    company_name: str,
    sync_id: object | None,
    sync_utc: datetime | None,
    cause: str,
    reconnect_link: str,
) -> Filled:
    """The message with its known placeholders replaced (in one pass: a value that holds
    a placeholder's name is not filled again). Dates are in the reader's zone."""
    values = {
        "company_name": company_name,
        "sync_id": str(sync_id) if sync_id else "(no sync)",
        "sync_date": timezone.localtime(sync_utc).strftime("%Y-%m-%d") if sync_utc else "",
        "cause": cause,
        "reconnect_link": reconnect_link or NO_RECONNECT_LINK,
    }
    return Filled(_PLACEHOLDER.sub(lambda match: values[match.group(1)], template), values)
