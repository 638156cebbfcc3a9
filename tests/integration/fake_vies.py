"""The EU VAT registry's REST shape on loopback: `POST /check-vat-number`.

    vies = FakeVies(registered={"DE136695976"}).start()
    vies.mode = "ms_unavailable"   # 200 with "valid": false and userError MS_UNAVAILABLE
    vies.mode = "down"             # 503
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeVies:
    registered: set[str] = field(default_factory=set)
    mode: str = "up"  # "up" | "down" | "ms_unavailable"
    asked: list[dict] = field(default_factory=list)

    def start(self) -> FakeVies:
        vies = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                vies.asked.append(body)
                if self.path != "/check-vat-number":
                    return self._send(404, {"errorWrappers": [{"error": "NOT_FOUND"}]})
                if vies.mode == "down":
                    return self._send(503, {"errorWrappers": [{"error": "SERVICE_UNAVAILABLE"}]})
                number = body["countryCode"] + body["vatNumber"]
                if vies.mode == "ms_unavailable":
                    return self._send(200, {"countryCode": body["countryCode"],
                                            "vatNumber": body["vatNumber"], "valid": False,
                                            "userError": "MS_UNAVAILABLE"})
                valid = number in vies.registered
                self._send(200, {"countryCode": body["countryCode"], "vatNumber": body["vatNumber"],
                                 "requestDate": "2026-03-01T10:00:00.000Z", "valid": valid,
                                 "name": "ACME GMBH" if valid else "---",
                                 "address": "BERLIN" if valid else "---",
                                 "userError": "VALID" if valid else "INVALID"})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
