"""Error fingerprints: the same failure, grouped across companies and syncs.

An upstream error message carries things that differ every time (correlation
IDs, record numbers, dates, amounts). Replacing them with placeholders leaves
the cause; its hash is the fingerprint, and the normalised text is what the UI
shows for the group.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<id>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<date>",
    ),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<date>"),
    (re.compile(r"\b\d{2}:\d{2}(?::\d{2})?\b"), "<time>"),
    (re.compile(r"(?<![\w.])[$€£]?\s?-?\d{1,3}(?:,\d{3})+(?:\.\d+)?\b"), "<amount>"),
    (re.compile(r"(?<![\w.])[$€£]?-?\d+\.\d+\b"), "<amount>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<id>"),
    (re.compile(r"\b(?=[A-Z0-9]*\d)[A-Z]{1,4}\d{4,}\b"), "<code>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise(message: str | None) -> str:
    """The message with its variable parts replaced by placeholders."""
    if not message:
        return ""
    text = message[:4000]
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return text.strip()


@lru_cache(maxsize=8192)
def _fingerprint(message: str) -> str:
    text = normalise(message)
    if not text:
        return ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(message: str | None) -> str:
    """A short stable hash of the normalised message; empty for no message.

    Remembered for the most recent few thousand messages: an estate repeats
    the same few failures on thousands of items.
    """
    if not message:
        return ""
    if len(message) > 4000:
        return _fingerprint(message[:4000])
    return _fingerprint(message)
