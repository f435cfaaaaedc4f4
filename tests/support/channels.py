"""Alert channels and what they send to: builders for channels, rules and
transitions, and real local receivers (an SMTP server, an HTTP server)."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.utils import timezone

from alerts.channels import describe
from alerts.models import Channel, Rule, Transition
from alerts.vocabulary import ChannelKind, Condition, TransitionKind

SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

_n = itertools.count(1)


def make_channel(
    url: str, *, kind: str = ChannelKind.NOTIFY, secret: str = "", **fields
) -> Channel:
    channel = Channel(name=fields.pop("name", f"Channel {next(_n)}"), kind=kind, **fields)
    channel.url = url
    if secret:
        channel.signing_secret = secret
    channel.display = describe(url)
    channel.save()
    return channel


def make_rule(*channels: Channel, **fields) -> Rule:
    values: dict[str, Any] = {
        "name": f"Failing streaks {next(_n)}",
        "condition": Condition.STREAK,
        "threshold": 3,
    }
    values.update(fields)
    rule = Rule.objects.create(**values)
    rule.channels.set(channels)
    return rule


def make_transition(
    rule: Rule,
    *,
    kind: str = TransitionKind.FIRED,
    subject: str = "company:acme",
    at: datetime | None = None,
    **fields,
) -> Transition:
    sequence = Transition.objects.filter(rule=rule, subject=subject).count() + 1
    values: dict[str, Any] = {
        "rule": rule,
        "subject": subject,
        "label": "Acme Ltd",
        "sequence": sequence,
        "kind": kind,
        "at": at or timezone.now(),
        "summary": "Acme Ltd has failed 3 syncs in a row"
        if kind == TransitionKind.FIRED
        else "Acme Ltd synced again",
        "detail": {"failed_syncs_in_a_row": 3, "companies": ["Acme Ltd"]},
        "path": "/companies/acme/",
    }
    values.update(fields)
    return Transition.objects.create(**values)


def free_port() -> int:
    """A port nothing listens on (now): for receivers, and for receivers that are down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)

    def url(self, to: str = "support@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}/{to}?from=alerts@example.com"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 that keeps what it is sent."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mailbox.messages.append(message_from_bytes(envelope.original_content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    requests: list[Received] = field(default_factory=list)
    status: int = 200

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def http_receiver(status: int = 200, port: int = 0) -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 (on `port`, or any free one) that keeps
    every POST and answers `status`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    receiver = Receiver(port=server.server_address[1], status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
