"""Register (or list) the sandbox's webhook consumers from the command line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.models import WebhookConsumer
from sandbox.webhooks import new_secret


class Command(BaseCommand):
    help = "Add or update a webhook consumer of the sandbox, or list them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", help="The consumer's endpoint; omit to list consumers.")
        parser.add_argument("--secret", default="", help="whsec_… (a new one if omitted).")
        parser.add_argument(
            "--format", choices=[f.value for f in WebhookConsumer.Format], default="current"
        )
        parser.add_argument("--disable", action="store_true")

    def handle(self, *args: object, **opts: Any) -> None:
        url = str(opts["url"] or "")
        if not url:
            for consumer in WebhookConsumer.objects.order_by("pk"):
                state = "enabled" if consumer.enabled else "disabled"
                self.stdout.write(f"{consumer.url}  {consumer.event_format}  {state}")
            return
        secret = str(opts["secret"]) or new_secret()
        if not secret.startswith("whsec_"):
            raise CommandError("The secret must be a Standard Webhooks secret (whsec_…).")
        consumer, created = WebhookConsumer.objects.update_or_create(
            url=url,
            defaults={
                "secret": secret,
                "event_format": opts["format"],
                "enabled": not opts["disable"],
            },
        )
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} consumer {consumer.url} ({consumer.event_format}).")
        if not opts["secret"]:
            self.stdout.write(f"Signing secret: {secret}")
