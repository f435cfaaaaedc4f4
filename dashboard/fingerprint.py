"""Error causes and fingerprints: the same failure, grouped across companies and syncs.

Codat wraps every downstream message the same way:

    An error occurred in a downstream service. Correlation ID: <uuid>. Message:  <cause>

so the first hundred characters of every message are the same, and a list
that cuts a message short shows only the wrapper. `split` separates the
wrapper from the cause; `headline` is the cause, with its real values, cut
for a list.

The cause also carries things that differ every time (record numbers, dates,
amounts, quoted names). `normalise` puts the cause first and replaces those
with named placeholders (`{uuid}`, `{date}`, `{amount}`, `{number}`...), as
Sentry parameterises messages; what identifies a cause rather than an
instance stays: words, HTTP statuses such as `failed(409)`, platform error
codes such as `QuickBooks error 3180`, or one that leads the message
(`BL01001973 Could not create …`). Its hash is the
fingerprint, and the normalised text is what the UI shows for the group.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# At most this much of a message is examined: a message of megabytes costs
# what one of a few kilobytes does.
BOUND = 4000

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# Codat's wrapper, at the start of a message: with or without "Message:", a
# period or two spaces, in any case. Nested wrappers are taken one at a time.
_WRAPPER = re.compile(
    r"\s*an\s+error\s+occurred\s+in\s+a\s+downstream\s+service\s*[.:;,]?\s*"
    r"(?:correlation\s*id\s*[:=]?\s*(?!message\b)(?P<id>[\w-]+)\s*[.:;,]?\s*)?"
    r"(?:message\s*:\s*)?",
    re.IGNORECASE,
)
# A message that does not start with this has no wrapper: the quick path.
_WRAPPER_START = "an error occurred"
_NOT_SPACE = re.compile(r"\S")


@dataclass(frozen=True)
class Cause:
    """A message taken apart: Codat's wrapper, and the cause inside it."""

    cause: str  # the text after the wrapper, stripped, real values and all
    wrapper: str  # the wrapper's text, or "" when there is none
    correlation_id: str  # the (outermost) wrapper's correlation ID, or ""
    full: str  # the message as it came


def split(message: str | None) -> Cause:
    """Separate Codat's wrapper from the cause; a message without one is all cause."""
    full = message or ""
    first = _NOT_SPACE.search(full)
    start = first.start() if first else len(full)
    if full[start : start + len(_WRAPPER_START)].lower() != _WRAPPER_START:
        return Cause(cause=full.strip(), wrapper="", correlation_id="", full=full)
    correlation_id = ""
    position = start
    while True:
        match = _WRAPPER.match(full, position)
        if match is None or match.end() == position:
            break
        if not correlation_id and match.group("id"):
            correlation_id = match.group("id")
        position = match.end()
        rest = full[position : position + len(_WRAPPER_START)]
        if rest.lower() != _WRAPPER_START:
            break
    if position == start:
        return Cause(cause=full.strip(), wrapper="", correlation_id="", full=full)
    return Cause(
        cause=full[position:].strip(),
        wrapper=full[start:position].strip(),
        correlation_id=correlation_id,
        full=full,
    )


# Quoted values: a name, a code, an ID. A quoted sentence (long, or ending
# as a sentence does) is part of the cause and is normalised inside; a
# quoted key (`"field": ...`) names something and stays. An apostrophe in a
# word (`company's`, `isn't`) opens or closes nothing.
_MAX_QUOTED = 80
_MAX_QUOTED_WORDS = 6


def _quoted(match: re.Match[str]) -> str:
    value = match.group(0)[1:-1]
    if (
        len(value) > _MAX_QUOTED
        or value.count(" ") >= _MAX_QUOTED_WORDS
        or (" " in value and value.rstrip()[-1:] in ".!?")
    ):
        return match.group(0)
    return "{quoted}"


_MONTH = (
    r"(?i:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CURRENCY_CODE = (
    "(?:USD|EUR|GBP|AUD|CAD|NZD|CHF|NOK|SEK|DKK|PLN|JPY|ZAR|SGD|HKD|INR|MXN|BRL|CZK|HUF|ILS|AED)"
)
_NUMBER_VALUE = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:[.,]\d+)?"

# Most patterns start with a digit (a character class the regex engine skips
# ahead to) and look behind it for a word boundary: `\d(?<!\w\d)` is `\b\d`,
# several times cheaper on a message with few digits.
_DIGIT = r"\d(?<!\w\d)"
# A digit, or a minus and a digit, that does not continue a word or a number.
_SIGNED_DIGIT = r"[-\d](?<![\w.,]-)(?<![\w.,]\d)(?:(?<=-)\d|(?<=\d))"


class Rule(NamedTuple):
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]
    # The rule runs only if the text holds one of these (in lower case if
    # `lower`): a few substring tests cost less than a regex pass.
    needles: tuple[str, ...] = ()
    lower: bool = False


# A number that identifies the cause: after "error" (QuickBooks error 3180)
# any number; after "HTTP" or "status" (status code 409) an HTTP status.
_KEPT_BEFORE = re.compile(
    r"(?i:\b(?:(?P<error>error(?:[ _]?(?:code|number))?)|http(?:[ _]status)?"
    r"|status(?:[ _]code)?))\s*[:#]?\s*-?\Z"
).search
_HTTP_STATUS = re.compile(r"[1-5]\d\d").fullmatch
# Message codes such as BL01001973 (kept only where they lead the message).
_MESSAGE_CODE = re.compile(r"[A-Z]{1,4}\d{4,}").fullmatch
# Long hex IDs: 0x..., or eight or more hex digits, one a letter.
_HEX_ID = re.compile(r"0x[0-9a-fA-F]+|(?=\d*[a-fA-F])[0-9a-fA-F]{8,}").fullmatch
_DIGITS = re.compile(r"\d+")


def _token(match: re.Match[str]) -> str:
    """A word with a digit in it: kept when it identifies the cause, else hidden."""
    token = match.group(0)
    if _MESSAGE_CODE(token):
        # A code that leads the message names its kind (BL01001973 Could not
        # create …); one inside it is a value (Tax rate TX100003 is missing).
        return token if not match.string[: match.start()].strip(" :-") else "{code}"
    if _HEX_ID(token):
        return "{hex}"
    if not token.isdecimal():
        return _DIGITS.sub("{number}", token)  # INPUT3, v2
    start, end = match.span()
    text = match.string
    if _HTTP_STATUS(token) and text[start - 1 : start] == "(" and text[end : end + 1] == ")":
        return token  # failed(409)
    before = _KEPT_BEFORE(text, max(0, start - 24), start)
    if before and (before.group("error") or _HTTP_STATUS(token)):
        return token
    return "{number}"


# In order: a later rule sees what the earlier ones left. Addresses before
# anything with digits in it; quoted values whole, before the dates and
# numbers they may hold; dates before times, amounts before plain numbers.
_RULES: list[Rule] = [
    # A correlation ID inside the cause (a nested service's, a retry's).
    Rule(
        re.compile(
            r"""(\bcorrelation[ _-]?id\b["']?\s*[:=]?\s*["']?)[\w-]*\d[\w-]*""", re.IGNORECASE
        ),
        r"\1{correlation_id}",
        ("correlation",),
        lower=True,
    ),
    Rule(re.compile(r"""\b(?:https?|ftp)://[^\s<>"']*[^\s<>"'.,;:!?)\]}]"""), "{url}", ("://",)),
    Rule(
        re.compile(r"""\bwww\.[^\s<>"']*[^\s<>"'.,;:!?)\]}]""", re.IGNORECASE),
        "{url}",
        ("www.",),
        lower=True,
    ),
    Rule(
        re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+\b"),
        "{email}",
        ("@",),
    ),
    Rule(re.compile(r"\{?\b" + _UUID + r"\b\}?"), "{uuid}", ("-",)),
    # A document number after its label: DocNumber=123, Document number 123,
    # Invoice number INV-0042, Bill No. 12.
    Rule(
        re.compile(
            r"""(\b(?:doc(?:ument)?[ _]?(?:number|num|no\.?|\#)|(?:invoice|bill|credit\ note)"""
            r"""[ _]?(?:number|num|no\.?|\#)|reference\ number)\s*[:=\#]?\s*["']?)"""
            r"""(?=[\w/-]*\d)[A-Za-z0-9][\w/-]*""",
            re.IGNORECASE,
        ),
        r"\1{document_number}",
        ("doc", "invoice", "bill", "credit note", "reference number"),
        lower=True,
    ),
    # An invoice or bill number on its own: INV-0042, BILL-12, PO-2026-001.
    Rule(
        re.compile(r"\b(?:INV|BILL|CRN|CN|PO|SI|PI)[-_/]?\d+(?:[-/]\d+)*\b"),
        "{document_number}",
        ("INV", "BILL", "CN", "PO", "SI", "PI"),
    ),
    Rule(re.compile(r"""(?<!\w)'[^'\n]{0,200}?'(?![\w'])(?!\s*:)"""), _quoted, ("'",)),
    Rule(re.compile(r'(?<!\w)"(?:[^"\\\n]|\\.){0,200}?"(?!\s*:)'), _quoted, ('"',)),
    # Dates: ISO dates and times, 2026/03/31, 31/03/2026, 31 Mar 2026, March 31, 2026.
    Rule(
        re.compile(
            _DIGIT + r"\d{3}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:\s?Z|\s?[+-]\d{2}:?\d{2})?)?(?![\w-])"
        ),
        "{date}",
        ("-",),
    ),
    Rule(re.compile(_DIGIT + r"\d{3}/\d{1,2}/\d{1,2}\b"), "{date}", ("/",)),
    Rule(re.compile(_DIGIT + r"\d?([/.-])\d{1,2}\1(?:\d{4}|\d{2})\b(?![.-]\d)"), "{date}"),
    Rule(
        re.compile(_DIGIT + r"\d?(?:st|nd|rd|th)?[ -]" + _MONTH + r"\.?,?[ -]\d{4}\b"),
        "{date}",
    ),
    Rule(
        re.compile(r"\b" + _MONTH + r"\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}\b"),
        "{date}",
        _MONTHS,
        lower=True,
    ),
    Rule(
        re.compile(_DIGIT + r"\d?:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?[AaPp]\.?[Mm]\b\.?)?"),
        "{time}",
        (":",),
    ),
    # Amounts: with a currency sign or code, thousands separators, decimals.
    Rule(re.compile(r"[$€£¥]\s?-?(?:" + _NUMBER_VALUE + ")"), "{amount}", tuple("$€£¥")),
    Rule(
        re.compile(
            r"[A-Z]{3}(?<!\w[A-Z]{3})(?<=" + _CURRENCY_CODE + r")\s?-?(?:" + _NUMBER_VALUE + ")"
        ),
        "{amount}",
    ),
    Rule(
        re.compile(
            _SIGNED_DIGIT
            + r"(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?|\d{0,2}(?:\.\d{3})+(?:,\d+)?|\d*(?:[.,]\d+)?)"
            r"\s?" + _CURRENCY_CODE + r"\b"
        ),
        "{amount}",
    ),
    Rule(
        re.compile(
            _SIGNED_DIGIT + r"(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?(?![\w,]|\.\d)"
            r"|\d{0,2}(?:\.\d{3})+,\d{2}(?![\w,.])"
            r"|\d*\.\d+(?!\.?\w))"
        ),
        "{amount}",
    ),
    # Last, each word with a digit in it: a code that identifies the cause
    # stays, a long hex ID and any other number go.
    Rule(re.compile(r"\b\w*\d\w*"), _token),
]
_SPACES = re.compile(r"\s+")
# Nothing any rule replaces can be there without one of these.
_VARIABLE = re.compile(r"""[\d'"@]|://|www\.""", re.IGNORECASE).search


def _cause_text(message: str) -> str:
    """The cause; the whole message when it is nothing but the wrapper."""
    cause = split(message)
    return cause.cause or cause.full.strip()


def _normalised(cause: str) -> str:
    text = cause
    if _VARIABLE(text):
        lowered: str | None = None
        for rule in _RULES:
            if rule.needles:
                haystack = text
                if rule.lower:
                    lowered = haystack = lowered or text.lower()
                if not any(needle in haystack for needle in rule.needles):
                    continue
            replaced = rule.pattern.sub(rule.replacement, text)
            if replaced is not text:
                text, lowered = replaced, None
    return _SPACES.sub(" ", text).strip()[:BOUND]


def normalise(message: str | None) -> str:
    """The cause, first, with its variable parts replaced by named placeholders.

    At most the first `BOUND` characters of the message are examined, and at
    most `BOUND` characters returned.
    """
    if not message:
        return ""
    return _normalised(_cause_text(message[:BOUND]))


@lru_cache(maxsize=8192)
def _fingerprint(cause: str) -> str:
    text = _normalised(cause)
    if not text:
        return ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(message: str | None) -> str:
    """A short stable hash of the normalised message; empty for no message.

    Remembered by cause for the most recent few thousand: an estate repeats
    the same few failures on thousands of items, each in a wrapper with its
    own correlation ID.
    """
    if not message:
        return ""
    return _fingerprint(_cause_text(message[:BOUND]))


def headline(message: str | None, limit: int = 160) -> str:
    """The cause, real values and all, whitespace collapsed, cut to `limit` for a list.

    Cut text ends with an ellipsis.
    """
    if not message or limit <= 0:
        return ""
    window = max(BOUND, 2 * limit)
    text = _SPACES.sub(" ", _cause_text(message[:window])).strip()
    if len(text) > limit or len(message) > window:
        return text[: limit - 1].rstrip() + "…"
    return text
