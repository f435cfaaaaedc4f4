"""Client-friendly notes for each sync status code: what it means, what to do next."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Note:
    meaning: str
    next_step: str


NOTES: dict[int, Note] = {
    1000: Note(
        "The sync is running: the customer's expenses are being written to their "
        "accounting software.",
        "Nothing to do yet. This page refreshes itself until the sync ends.",
    ),
    1010: Note(
        "The sync has been running for over ten minutes. Large batches can take this long, "
        "but it may also be stuck waiting on the accounting software.",
        "Check whether the accounting platform is reachable; if it is still running in an "
        "hour, raise it with Codat support quoting the sync ID.",
    ),
    2000: Note(
        "The sync finished and the expenses were written to the accounting software.",
        "Nothing to do. If some items still failed, they are listed under Push items.",
    ),
    2040: Note(
        "The sync finished but there was nothing new to write.",
        "Nothing to do, unless the customer expected expenses to appear: then check that they "
        "were created before this sync started.",
    ),
    4000: Note(
        "The customer's sync configuration is not valid for their accounting software "
        "(for example a bank account or expense account that no longer exists).",
        "Open the Config tab, compare it with the accounting software, and ask the customer "
        "to fix the mapping; then retry the failed items.",
    ),
    4040: Note(
        "The company was deleted, or its connection to the accounting software was removed.",
        "Ask the customer to reconnect their accounting software; nothing can be pushed until "
        "they do.",
    ),
    4220: Note(
        "The company de-authorized the connection to its accounting software.",
        "Ask the customer to reconnect (re-authorize) their accounting software, then retry.",
    ),
    4260: Note(
        "The customer's subscription to their accounting software has expired.",
        "Ask the customer to renew their accounting subscription, then retry the failed items.",
    ),
    5000: Note(
        "An unexpected error happened on the upstream's side.",
        "Retry the failed items. If it fails again, raise it with Codat support quoting the "
        "sync ID and the correlation ID in the error message.",
    ),
    5080: Note(
        "Duplication protection stopped the sync: these expenses look like ones already written.",
        "Check the accounting software for the records before retrying, so nothing is written "
        "twice.",
    ),
    5120: Note(
        "The expense data could not be processed (for example an invalid amount or date).",
        "Read the items' messages under Push items; the data must be corrected at the source "
        "before a retry can succeed.",
    ),
    5130: Note(
        "The accounting software refused some records (for example a closed period, a missing "
        "tax rate, or an invalid account).",
        "Read each failed item's message, ask the customer to fix the cause in their "
        "accounting software, then retry the failed items.",
    ),
}

UNKNOWN = Note(
    "The upstream reported a status code this dashboard does not know.",
    "Check Codat's documentation for the code, and treat the sync as failed until then.",
)


def note_for(code: int) -> Note:
    return NOTES.get(code, UNKNOWN)
