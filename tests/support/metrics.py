"""Reading `/metrics` as Prometheus does: through prometheus_client's own parser."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

TOKEN = "metrics-token-for-the-tests-0123456789"


@dataclass(frozen=True)
class Scrape:
    """One answer of `/metrics`, parsed: its families (name → type, help) and samples."""

    types: dict[str, str]
    helps: dict[str, str]
    samples: list[Sample]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = list(text_string_to_metric_families(text))
        return cls(
            types={f.name: f.type for f in families},
            helps={f.name: f.documentation for f in families},
            samples=[sample for f in families for sample in f.samples],
        )

    def value(self, name: str, **labels: str) -> float | None:
        """The sample of that name with exactly these labels; None if there is none."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
        return found[0] if found else None

    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {frozenset(s.labels.items()): s.value for s in self.samples if s.name == name}


def scrape(client: Client | None = None, token: str = TOKEN) -> Scrape:
    """Ask `/metrics` as a scraper with the token (the caller sets METRICS_TOKEN)."""
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return Scrape.parse(response.content.decode())
