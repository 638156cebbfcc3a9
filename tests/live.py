"""A gateway served over real HTTP on loopback (a thread), with the demo data: what a browser,
or requests acting as one, signs in to through the development issuer."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass

import requests
from werkzeug.serving import make_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveGateway:
    app: object
    url: str
    server: object
    thread: threading.Thread

    @classmethod
    def start(cls, db_url: str, tmp_path, **overrides) -> LiveGateway:
        from gateway import demo
        from tests.conftest import build_app

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        app = build_app(db_url, tmp_path, ISSUER=url, DEV_ISSUER=True, **overrides)
        app.config["TESTING"] = False  # errors answer as they would in use, not raised
        demo.seed(app)
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(app, url, server, thread)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)
        self.app.extensions["gateway.db"].dispose()

    def browser(self) -> Browser:
        return Browser(self.url)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """requests with a cookie jar, posting forms with their CSRF token as a browser would."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.last = None

    def get(self, path: str, **kw):
        self.last = self.http.get(self.base + path if path.startswith("/") else path, timeout=30, **kw)
        return self.last

    def csrf(self, page=None) -> str:
        found = CSRF.search((page or self.last).text)
        assert found, "no CSRF token on the page"
        return found.group(1)

    def post(self, path: str, data: dict, *, csrf: bool = True, **kw):
        data = dict(data)
        if csrf:
            data.setdefault("csrf_token", self.csrf())
        url = self.base + path if path.startswith("/") else path
        self.last = self.http.post(url, data=data, timeout=30, **kw)
        return self.last

    def sign_in(self, subject: str, tenant: str = "demo-acme", path: str | None = None):
        """Through the real flow: /login, the development issuer's page, the callback."""
        page = self.get(path or f"/login?tenant={tenant}")
        assert page.status_code == 200 and "/dev-issuer/authorize" in page.url, page.text[:500]
        done = self.post(page.url, {"subject": subject})
        assert done.status_code == 200, done.text[:500]
        return done
