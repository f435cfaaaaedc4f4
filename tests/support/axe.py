"""Accessibility checks in a Playwright page with axe-core (from npm: `make install`).

The pages' Content-Security-Policy refuses inline scripts, so axe is not added
as a <script> tag (`page.add_script_tag` inlines the file, which the policy
blocks and the browser tests count as an error): its source is evaluated
through the DevTools protocol (`page.evaluate`), which no page policy governs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

# The standards checked: WCAG 2.1 A and AA (colour contrast among them), and axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        return f"[{self.impact}] {self.rule}: {self.help} ({shown})"


@cache
def _source() -> str:
    if not AXE.is_file():
        raise FileNotFoundError(f"{AXE} is missing: run `make install` (npm ci)")
    return AXE.read_text(encoding="utf-8")


def scan(page: Page) -> list[Violation]:
    """What axe finds wrong on the page as it is now, every impact."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source())
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await window.axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => ({
                rule: v.id, impact: v.impact || "minor", help: v.help,
                targets: v.nodes.map(n => n.target.join(" ")),
            }));
        }""",
        TAGS,
    )
    return [Violation(**v) for v in found]


def serious(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.impact in ("serious", "critical")]
