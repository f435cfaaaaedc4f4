"""A webhook consumer for tests: an HTTP server on loopback that records what it gets."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Consumer:
    url: str
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many requests first


def start_consumer() -> tuple[Consumer, ThreadingHTTPServer]:
    state = Consumer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if state.fail_next > 0:
                state.fail_next -= 1
                self.send_response(500)
            else:
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/codat"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server
