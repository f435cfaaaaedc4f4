"""What the Content-Security-Policy forbids in a page, found the way a browser parses it.

The policy (`script-src 'self'`, `style-src 'self'`) runs only scripts and
styles from our own files, so a page must hold no inline script, no `on…=`
handler, no `style=` attribute and no `<style>` element; and, since it
forbids evaluating strings as code, none of the htmx attributes that htmx
evaluates (`hx-on…`, trigger filters `[…]`, `js:` values). Data blocks
(`json_script`, `type="application/json"`) are not run and are allowed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# <script type=…> values a browser does not run.
DATA_TYPES = {"application/json", "application/ld+json", "text/template"}
# Template tags and comments are not HTML: they are blanked before a template is parsed.
_TEMPLATE_SYNTAX = ("{%", "%}"), ("{{", "}}"), ("{#", "#}")


# htmx attributes whose `js:` (or `javascript:`) values htmx evaluates.
_HTMX_VALUES = ("hx-vals", "hx-vars", "hx-headers")


def _attribute_problem(tag: str, name: str, value: str) -> str | None:
    """Why the policy would block attribute `name` of `tag`, or None."""
    htmx = name.removeprefix("data-")
    if name.startswith("on"):
        return f"<{tag} {name}=…>: an inline event handler"
    if name == "style":
        return f"<{tag} style=…>: an inline style"
    if htmx.startswith("hx-on"):
        return f"<{tag} {name}=…>: htmx would evaluate it as code"
    # A filter follows an event name; `from:(… input[type=x])` is a selector.
    if htmx == "hx-trigger" and "[" in re.sub(r"\([^)]*\)", "", value):
        return f"<{tag} {name}=…>: a trigger filter, evaluated as code"
    if htmx in _HTMX_VALUES and value.strip().startswith(("js:", "javascript:")):
        return f"<{tag} {name}=…>: htmx would evaluate it as code"
    return None


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._open_script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            problem = _attribute_problem(tag, name, value or "")
            if problem:
                self.problems.append(problem)
        if tag == "style":
            self.problems.append("<style>: an inline style sheet")
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            kind = (names.get("type") or "").strip().lower()
            self._open_script = None if kind in DATA_TYPES else "<script>"

    def handle_data(self, data: str) -> None:
        if self._open_script and data.strip():
            self.problems.append(f"{self._open_script}: an inline script ({data.strip()[:60]!r})")
            self._open_script = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open_script = None


def inline_code(html: str) -> list[str]:
    """Everything in `html` that a strict Content-Security-Policy would block."""
    inspector = _Inspector()
    inspector.feed(html)
    inspector.close()
    return inspector.problems


def blank_template_syntax(source: str) -> str:
    """A template's text with its tags, variables and comments blanked out.

    So that `{% if x %}checked{% endif %}` inside a tag parses as HTML, and
    the policy is checked on every branch a template has at once.
    """
    for opening, closing in _TEMPLATE_SYNTAX:
        parts: list[str] = []
        rest = source
        while opening in rest:
            before, _, after = rest.partition(opening)
            _, found, rest = after.partition(closing)
            parts.append(before + " ")
            if not found:
                rest = ""
        parts.append(rest)
        source = "".join(parts)
    return source
