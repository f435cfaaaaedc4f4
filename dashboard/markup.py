"""HTML built in Python, escaped by default.

`html(template, *args)` follows Django's `format_html` rule: every argument is
escaped unless it is already safe (markup made here, or marked safe by Django).
It escapes with the standard library's `html.escape`, which gives the same
text as Django's `escape` without its check for lazy strings, a cost a long
table pays once per cell. This module is the only place that marks Python-built
markup safe; the tables and the chart are made of `html` and `join` alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape as _escape
from uuid import UUID

from django.utils.safestring import SafeData, SafeString

# Types whose text holds no markup character: escaping them would change nothing.
_PLAIN = (int, UUID)
# The characters `html.escape` replaces; most text has none, and one search
# costs less than its five replacements.
_SPECIAL = re.compile("[&<>\"']").search


def escape(value: object) -> str:
    """The value as HTML text: itself if already safe, else escaped."""
    if isinstance(value, str):
        if isinstance(value, SafeData):
            return value
        return _escape(value) if _SPECIAL(value) else value
    if type(value) in _PLAIN or isinstance(value, SafeData):
        return str(value)
    return _escape(str(value))


def html(template: str, *args: object) -> SafeString:
    """`template.format(*args)` with every argument escaped unless already safe."""
    return SafeString(template.format(*map(escape, args)))


def join(parts: Iterable[object], separator: str = "") -> SafeString:
    """The parts one after another; any part that is not already safe is escaped."""
    return SafeString(separator.join(map(escape, parts)))
