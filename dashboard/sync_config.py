"""A sync's Config tab: the configuration in force when it ran, read as settings, and
how it differs from the company's current one.

The mirror keeps one `ConfigSnapshot` per version it saw, stamped when it was
fetched. The version in force when a sync started is, as best known, the last
one fetched before it; when none was (the company's first refresh came after
the sync), the earliest one after stands in and says so.

Codat's config document (`GET …/sync/expenses/config`, `CompanyConfiguration`
in its OpenAPI) names the bank account, supplier and customer by ID alone; the
names of those records live in the company's accounting data. Where an object
of the document does carry a name beside its `id` (`name`, or `accountName`,
`supplierName`, `customerName` as the accounting API calls them), the tab
shows it; it never guesses one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from .models import ConfigSnapshot, Sync

NAME_KEYS = ("name", "accountName", "supplierName", "customerName", "displayName")
# A config document is small; one from a misbehaving upstream is cut here, and the tab says so.
MAX_SETTINGS = 500
CHEVRON = " \u203a "

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+|[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Setting:
    """One leaf of the document: where it sits, its value and, for a record, its name."""

    path: str
    label: str
    value: str
    name: str = ""
    # An object named by its ID (`bankAccount: {id: …}`): the value is that ID.
    record: bool = False


@dataclass(frozen=True)
class Change:
    kind: Literal["added", "removed", "changed"]
    label: str
    before: Setting | None
    after: Setting | None


@dataclass(frozen=True)
class SyncConfig:
    """What the Config tab shows for one sync."""

    # The snapshot shown: the last fetched before the sync started, else the first after.
    shown: ConfigSnapshot | None
    fetched_before: bool
    # The company's latest snapshot (the same row as `shown` when nothing came after).
    current: ConfigSnapshot | None
    settings: list[Setting]
    truncated: bool
    # From the shown snapshot to the current one; empty when they are equal.
    changes: list[Change]

    @property
    def document(self) -> str:
        """The shown snapshot as it was fetched (what its download holds)."""
        if self.shown is None:
            return ""
        return json.dumps(self.shown.config, indent=2, sort_keys=True, ensure_ascii=False)

    @property
    def unnamed(self) -> bool:
        """Some record is named by its ID alone (as Codat's config document does)."""
        return any(s.record and not s.name for s in self.settings)

    @property
    def is_current(self) -> bool:
        return (
            self.shown is not None
            and self.current is not None
            and self.shown.digest == self.current.digest
        )


def for_sync(sync: Sync) -> SyncConfig:
    """At most three index probes (`config_company_time`), whatever the company's history."""
    snapshots = ConfigSnapshot.objects.filter(company_id=sync.company_id)
    latest_first = snapshots.order_by("-fetched_at", "-pk")
    shown = latest_first.filter(fetched_at__lt=sync.sync_utc).first()
    fetched_before = shown is not None
    if shown is None:
        shown = snapshots.filter(fetched_at__gte=sync.sync_utc).order_by("fetched_at", "pk").first()
    if shown is None:
        return SyncConfig(None, False, None, [], False, [])
    current = latest_first.first() or shown
    shown_settings = settings(shown.config)
    changes = [] if current.digest == shown.digest else differences(shown.config, current.config)
    return SyncConfig(
        shown=shown,
        fetched_before=fetched_before,
        current=current,
        settings=shown_settings[:MAX_SETTINGS],
        truncated=len(shown_settings) > MAX_SETTINGS,
        changes=changes[:MAX_SETTINGS],
    )


def settings(config: Any) -> list[Setting]:
    """The document's leaves in key order, each object named by an ID as one setting."""
    found: list[Setting] = []
    _walk(config, [], found)
    return found


def differences(before: Any, after: Any) -> list[Change]:
    """Key by key: what `after` added, removed or changed (a renamed record counts)."""
    old = {s.path: s for s in settings(before)}
    new = {s.path: s for s in settings(after)}
    changes: list[Change] = []
    for path, setting in new.items():
        was = old.get(path)
        if was is None:
            changes.append(Change("added", setting.label, None, setting))
        elif (was.value, was.name) != (setting.value, setting.name):
            changes.append(Change("changed", setting.label, was, setting))
    changes.extend(
        Change("removed", setting.label, setting, None)
        for path, setting in old.items()
        if path not in new
    )
    return changes


def _walk(value: Any, path: list[str], found: list[Setting]) -> None:
    if len(found) > MAX_SETTINGS:
        return
    if isinstance(value, dict):
        rest = dict(value)
        if path and _is_scalar(value.get("id")):
            name_key = next(
                (k for k in NAME_KEYS if isinstance(value.get(k), str) and value[k].strip()), None
            )
            found.append(
                Setting(
                    _path(path),
                    _label(path),
                    _text(rest.pop("id")),
                    rest.pop(name_key) if name_key else "",
                    record=True,
                )
            )
        if not value and path:
            found.append(Setting(_path(path), _label(path), "(empty)"))
        for key in sorted(rest):
            _walk(rest[key], [*path, str(key)], found)
    elif isinstance(value, list):
        if not value:
            found.append(Setting(_path(path), _label(path), "(none)"))
        for index, element in enumerate(value):
            _walk(element, [*path, f"[{index}]"], found)
    else:
        found.append(Setting(_path(path), _label(path), _text(value)))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _path(path: list[str]) -> str:
    return "".join(part if part.startswith("[") else f".{part}" for part in path).lstrip(".")


def _label(path: list[str]) -> str:
    """`["taxRates", "[0]", "accountId"]` → "Tax rates, #1, Account ID" (with chevrons)."""
    return CHEVRON.join(_words(part) for part in path) or "(document)"


def _words(key: str) -> str:
    if key.startswith("[") and key.endswith("]") and key[1:-1].isdigit():
        return f"#{int(key[1:-1]) + 1}"
    words = [w for w in _WORD.findall(key) if w.strip(" _-")]
    if not words:
        return key
    shown = [w if w.isupper() else w.lower() for w in words]
    shown = ["ID" if w in ("id", "ID") else w for w in shown]
    first = shown[0]
    return " ".join([first[:1].upper() + first[1:], *shown[1:]])
