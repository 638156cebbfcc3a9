"""Logs (design.md §8): one line per request and per domain step, JSON by default, plain text
with GATEWAY_LOG_FORMAT=text; every line carries the request id when there is one.

What is logged is chosen field by field (ids, kinds, routes, statuses, durations): never a
header, a body or a query string, so tokens, client secrets, webhook secrets and payment
tokens cannot reach a log line.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

from adapters import context

REQUEST_ID_HEADER = "X-Request-Id"
# Printable ASCII without spaces, bounded: safe to echo in a header and to log.
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
OUR_LOGGERS = ("gateway", "adapters")
_MARK = "_gateway_handler"

requests_log = logging.getLogger("gateway.requests")
domain_log = logging.getLogger("gateway.domain")


# -- formatting ------------------------------------------------------------------------------
class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = (g.get("request_id") if has_request_context()
                                 else context.request_id.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        body = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        if getattr(record, "request_id", None):
            body["request_id"] = record.request_id
        body.update(getattr(record, "domain", None) or {})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record):
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        rid = getattr(record, "request_id", None)
        fields = " ".join(f"{k}={v}" for k, v in (getattr(record, "domain", None) or {}).items()
                          if v is not None)
        line = f"{when} {record.levelname:<7} {record.name}{f' [{rid}]' if rid else ''} " \
               f"{record.getMessage()}{' ' + fields if fields else ''}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure(fmt: str = "json") -> None:
    """One handler on the root logger (idempotent); our loggers at INFO, others at WARNING."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _MARK, False)), None)
    if handler is None:
        handler = _StderrHandler()
        setattr(handler, _MARK, True)
        handler.addFilter(_RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    # Our request line replaces the development server's, which prints query strings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


# -- requests --------------------------------------------------------------------------------
def init_app(app: Flask) -> None:
    configure(app.config.get("LOG_FORMAT", "json"))
    app.before_request(take_request_id)
    app.after_request(log_request)
    app.teardown_request(lambda _exc: context.request_id.set(None))


def take_request_id() -> None:
    if "request_id" in g:
        return
    g.started_at = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(16)
    context.request_id.set(g.request_id)  # the outbox carries it to the request's jobs


def log_request(response):
    rid = g.get("request_id") or secrets.token_hex(16)
    response.headers[REQUEST_ID_HEADER] = rid
    p = g.get("principal")
    took = time.perf_counter() - g.get("started_at", time.perf_counter())
    requests_log.info("%s %s %s", request.method, _route(), response.status_code, extra={
        "request_id": rid, "domain": {
            "method": request.method, "route": _route(), "status": response.status_code,
            "duration_ms": round(took * 1000, 1),
            "caller_kind": getattr(p, "kind", None), "caller_subject": getattr(p, "subject", None),
            "tenant": g.get("log_tenant") or (request.view_args or {}).get("tenant_id")}})
    return response


def _route() -> str:
    """The URL rule (`/api/v1/accounts/<account_id>`), never the raw path with its ids."""
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def note_tenant(tenant_id: str) -> None:
    """The tenant a request acts on, for its log line (an account loaded names it)."""
    if has_request_context():
        g.log_tenant = tenant_id


# -- domain steps ----------------------------------------------------------------------------
STEPS = {"order.created": "order placed", "order.completed": "order applied",
         "order.rejected": "order rejected", "order.withdrawn": "order withdrawn",
         "advisor_case.opened": "case opened", "advisor_case.resolved": "case resolved",
         "subscription.updated": "subscription updated"}
# Only these keys of an event's data are logged: ids and outcomes, nothing a customer typed.
_SAFE = ("order_id", "account_id", "subscription_id", "case_id", "endpoint_id", "status",
         "route", "decision", "pool", "assigned_advisor_id")


def step(message: str, **fields) -> None:
    domain_log.info(message, extra={"domain": {k: v for k, v in fields.items() if v is not None}})


def event(type_: str, tenant_id: str, data: dict) -> None:
    fields = {"event": type_, "tenant": tenant_id}
    fields.update({k: data[k] for k in _SAFE if k in data})
    step(STEPS.get(type_, type_), **fields)
    if type_ == "order.created" and "route" in data:
        step("order routed", order_id=data.get("order_id"), route=data["route"], tenant=tenant_id)
