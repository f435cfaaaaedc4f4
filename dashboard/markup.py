"""HTML built in Python, escaped by default.

`markdown(text)` is the other way in: text a person wrote (a playbook) as
Markdown, its HTML cut down by a sanitiser (nh3) to a few tags and to links
that lead out over http(s) or mail, never raw.

`html(template, *args)` follows Django's `format_html` rule: every argument is
escaped unless it is already safe (markup made here, or marked safe by Django).
It escapes with the standard library's `html.escape`, which gives the same
text as Django's `escape` without its check for lazy strings, a cost a long
table pays once per cell. This module is the only place that marks Python-built
markup safe; the tables and the chart are made of `html` and `join` alone.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from html import escape as _escape
from uuid import UUID

import markdown as _markdown
import nh3
from django.utils.safestring import SafeData, SafeString
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

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


# What a playbook may hold once rendered: text structure, code, and links out.
MARKDOWN_TAGS = frozenset(
    {"p", "ul", "ol", "li", "strong", "em", "code", "pre", "a", "h3", "h4", "blockquote", "br"}
)
_CLEANER = nh3.Cleaner(
    tags=set(MARKDOWN_TAGS),
    attributes={"a": {"href"}},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer",
)
# Headings sit under the page's own (h1, h2): a playbook's "#" is an h3.
_HEADINGS = {"h1": "h3", "h2": "h3", "h3": "h3", "h4": "h4", "h5": "h4", "h6": "h4"}


class _Headings(Treeprocessor):
    def run(self, root: ET.Element) -> None:
        for element in root.iter():
            if element.tag in _HEADINGS:
                element.tag = _HEADINGS[element.tag]


class _PageHeadings(Extension):
    def extendMarkdown(self, md: _markdown.Markdown) -> None:
        md.treeprocessors.register(_Headings(md), "page_headings", 0)


def markdown(text: str) -> SafeString:
    """Markdown as HTML that holds only `MARKDOWN_TAGS`: raw HTML, scripts and
    javascript: links are removed by the sanitiser, whatever the text says."""
    rendered = _markdown.Markdown(extensions=[_PageHeadings()]).convert(text or "")
    return SafeString(_CLEANER.clean(rendered))
