"""A webhook receiver on loopback that verifies Standard Webhooks signatures with the
`standardwebhooks` library, records what it accepted, and can be told to answer otherwise.

    receiver = Receiver().start()
    receiver.secret = "whsec_..."       # from the endpoint's creation answer
    receiver.answer = 503               # every request now gets 503 (receiver "down")
    receiver.stop()                     # or really down: connection refused

With `tls` (a server ssl.SSLContext) it answers HTTPS, and `url` names `host` (resolved by the
test, not by DNS); it records the name each client asked for in the handshake (SNI).
"""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    message_id: str
    event: dict
    headers: dict


@dataclass
class Receiver:
    secret: str | None = None
    answer: int = 204
    delay: float = 0.0  # seconds before answering
    port: int = 0
    accepted: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # signature failures
    hits: int = 0
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"  # the name in `url`
    server_names: list[str | None] = field(default_factory=list)  # SNI of each TLS handshake
    host_headers: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.delay:
                    time.sleep(receiver.delay)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.hits += 1
                    receiver.host_headers.append(headers.get("host", ""))
                    status = receiver.answer
                    try:
                        event = Webhook(receiver.secret).verify(body, headers)
                    except (WebhookVerificationError, TypeError, ValueError) as exc:
                        receiver.refused.append(f"{type(exc).__name__}: {exc}")
                        status = 400
                    else:
                        if 200 <= status < 300:
                            receiver.accepted.append(Received(headers["webhook-id"], event, headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        if self.tls is not None:
            def heard(_socket, name, _context):
                with receiver._lock:
                    receiver.server_names.append(name)

            self.tls.sni_callback = heard
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def types(self) -> list[str]:
        with self._lock:
            return [r.event["type"] for r in self.accepted]

    def event_ids(self) -> list[int]:
        with self._lock:
            return [int(r.event["id"]) for r in self.accepted]
