"""A real HTTP server on loopback that behaves like the billing center and the corporate portal.

It issues OAuth client-credentials tokens, applies each distinct Idempotency-Key once (a replay
gets the first answer), and can be told to misbehave: fail the next calls, answer slowly, refuse
everything with a permanent 4xx, or go down and come back on the same port.

    external = FakeExternal().start()
    external.fail_next(2, status=503)
    ...
    external.stop()
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

TOKEN_PATH = "/oauth/token"
CHANGES_PATH = "/v1/subscription-changes"
PURCHASE_ORDERS_PATH = "/v1/purchase-orders"
QUOTES_PATH = "/v1/quotes"
CHANGE_FIELDS = ("order_id", "idempotency_key", "account_id", "tenant_id", "currency", "items",
                 "balance_applied", "credit_added", "total_due")
QUOTE_FIELDS = ("order_id", "idempotency_key", "account_id", "items", "total_due", "currency", "expires_at")
ITEM_FIELDS = ("subscription_id", "product", "plan", "licenses", "billing_period", "period_start",
               "period_end")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    status: int = 0


@dataclass
class _Fault:
    count: int
    path: str | None
    status: int = 0
    delay: float = 0.0
    after_apply: bool = False

    def matches(self, path: str) -> bool:
        # The token endpoint fails only when asked by name, so API faults stay about API calls.
        if path == TOKEN_PATH:
            return self.count > 0 and self.path == TOKEN_PATH
        return self.count > 0 and (self.path is None or path.startswith(self.path))


@dataclass
class _Applied:
    fingerprint: str
    status: int
    answer: dict
    order_id: str


@dataclass
class FakeExternal:
    client_id: str = "gateway"
    client_secret: str = "gateway-secret"
    token_ttl: int = 3600
    require_auth: bool = True
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    token_requests: int = 0
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
        self._applied: dict[tuple[str, str], _Applied] = {}
        self._quotes: dict[str, dict] = {}
        self._subscriptions = 0
        self._faults: list[_Fault] = []
        self._permanent: int | None = None
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> FakeExternal:
        """Listen (again) on 127.0.0.1; after a stop(), on the same port, with the same state."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    # -- fault injection ----------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, path: str | None = None) -> None:
        """The next n API calls answer `status` without applying anything.

        Token requests are affected only with path=TOKEN_PATH.
        """
        with self._lock:
            self._faults.append(_Fault(n, path, status=status))

    def delay_next(self, n: int, seconds: float, path: str | None = None, after_apply: bool = False) -> None:
        """The next n API calls wait `seconds` before (or, with after_apply, after) applying."""
        with self._lock:
            self._faults.append(_Fault(n, path, delay=seconds, after_apply=after_apply))

    def permanent_failure(self, status: int | None = 422) -> None:
        """Every API call answers `status` until cleared with permanent_failure(None)."""
        with self._lock:
            self._permanent = status

    def revoke_tokens(self) -> None:
        """Forget every issued token, as a rotation on the system's side would."""
        with self._lock:
            self._tokens.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._permanent = None

    # -- what the system saw ------------------------------------------------------------------
    def applied_count(self, key: str, path: str | None = None) -> int:
        """How many times the key was applied, on any path or on one (this system applies once)."""
        with self._lock:
            return sum(1 for (p, k) in self._applied if k == key and path in (None, p))

    def applied_for_order(self, order_id: str, path: str | None = None) -> int:
        """How many times an order was applied: more than once means a client changed its key."""
        with self._lock:
            return sum(1 for (p, _), done in self._applied.items()
                       if done.order_id == order_id and path in (None, p))

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path)]

    def set_quote_status(self, quote_id: str, status: str, note: str | None = None) -> None:
        with self._lock:
            self._quotes[quote_id]["status"] = status
            if note is not None:
                self._quotes[quote_id]["note"] = note

    def quote_status_of(self, quote_id: str) -> str:
        with self._lock:
            return self._quotes[quote_id]["status"]

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (a delayed call may outlive its client)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError("the fake external system is still handling requests")

    # -- behaviour ----------------------------------------------------------------------------
    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        if path == TOKEN_PATH and method == "POST":
            with self._lock:
                self.token_requests += 1
                fault = self._take_fault(path)
            if fault is not None:
                time.sleep(fault.delay)
                if fault.status:
                    return fault.status, {"error": "injected failure"}
            return self._token(headers, raw)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"error": "body is not JSON"}
        record = Recorded(method, path, headers, body)
        with self._lock:
            self.requests.append(record)
            authorised = not self.require_auth or self._authorised(headers.get("authorization", ""))
            # A refused token consumes no injected fault: the fault is meant for a real call.
            fault = self._take_fault(path) if authorised else None
            permanent = self._permanent
        if not authorised:
            status, answer = 401, {"error": "invalid_token"}
        else:
            status, answer = self._api(method, path, headers, body, fault, permanent)
        record.status = status
        return status, answer

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(path):
                fault.count -= 1
                return fault
        return None

    def _api(self, method, path, headers, body, fault, permanent) -> tuple[int, dict]:
        if fault is not None and fault.status:
            return fault.status, {"error": "injected failure"}
        if permanent is not None:
            return permanent, {"error": "injected permanent failure"}
        if fault is not None and not fault.after_apply:
            time.sleep(fault.delay)
        if method == "POST" and path in (CHANGES_PATH, QUOTES_PATH, PURCHASE_ORDERS_PATH):
            result = self._apply_once(path, headers.get("idempotency-key"), body)
        elif method == "POST" and (match := re.fullmatch(QUOTES_PATH + r"/([^/]+)/withdraw", path)):
            result = self._withdraw_quote(match.group(1))
        elif method == "GET" and (match := re.fullmatch(QUOTES_PATH + r"/([^/]+)", path)):
            with self._lock:
                quote = self._quotes.get(match.group(1))
            result = (200, dict(quote)) if quote else (404, {"error": "no such quote"})
        else:
            result = 404, {"error": f"no route {method} {path}"}
        if fault is not None and fault.after_apply:
            time.sleep(fault.delay)
        return result

    def _apply_once(self, path: str, key: str | None, body: dict | None) -> tuple[int, dict]:
        if not key:
            return 400, {"error": "Idempotency-Key header is required"}
        fingerprint = json.dumps(body, sort_keys=True)
        with self._lock:
            done = self._applied.get((path, key))
            if done is not None:
                if done.fingerprint != fingerprint:
                    return 422, {"error": "Idempotency-Key reused with a different request"}
                return done.status, done.answer
            status, answer = (self._create_quote if path == QUOTES_PATH else self._apply_change)(body)
            if status < 300:  # a rejected request applied nothing, so it is not remembered
                self._applied[(path, key)] = _Applied(fingerprint, status, answer, body["order_id"])
            return status, answer

    def _apply_change(self, body: dict | None) -> tuple[int, dict]:
        missing = _missing(body, CHANGE_FIELDS, ITEM_FIELDS)
        if missing:
            return 422, {"error": f"missing {missing}"}
        subscriptions = []
        for item in body["items"]:
            subscription_id = item["subscription_id"]
            if subscription_id is None:
                self._subscriptions += 1
                subscription_id = f"sub_{self._subscriptions}"
            subscriptions.append({**item, "subscription_id": subscription_id})
        return 201, {"status": "applied", "order_id": body["order_id"], "subscriptions": subscriptions}

    def _create_quote(self, body: dict | None) -> tuple[int, dict]:
        missing = _missing(body, QUOTE_FIELDS, ())
        if missing:
            return 422, {"error": f"missing {missing}"}
        quote_id = f"q_{len(self._quotes) + 1}"
        self._quotes[quote_id] = {"id": quote_id, "status": "open", "order_id": body["order_id"]}
        return 201, {"id": quote_id, "status": "open"}

    def _withdraw_quote(self, quote_id: str) -> tuple[int, dict]:
        """The buyer took the request back in the gateway: an open quote closes (again: same)."""
        with self._lock:
            quote = self._quotes.get(quote_id)
            if quote is None:
                return 404, {"error": "no such quote"}
            if quote["status"] not in ("open", "withdrawn"):
                return 409, {"error": "quote_closed", "status": quote["status"]}
            quote["status"] = "withdrawn"
            return 200, dict(quote)

    def _token(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[token] = time.time() + self.token_ttl
            self.tokens_issued += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}

    def _authorised(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and self._tokens.get(token, 0) > time.time()


def _missing(body: dict | None, fields: tuple[str, ...], item_fields: tuple[str, ...]) -> list[str]:
    if not isinstance(body, dict):
        return list(fields)
    missing = [name for name in fields if name not in body]
    for item in body.get("items") or []:
        missing += [f"items[].{name}" for name in item_fields if name not in item]
    return missing


def _handler(external: FakeExternal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            with external._lock:
                external._in_flight += 1
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = external._handle(method, self.path, headers, raw)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up waiting; the work is done regardless
                    pass
            finally:
                with external._idle:
                    external._in_flight -= 1
                    external._idle.notify_all()

        def log_message(self, format: str, *args) -> None:  # keep test output quiet
            pass

    return Handler
