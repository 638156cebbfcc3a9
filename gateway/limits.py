"""Request limits, checked before authentication and before any view or query runs.

A body over 1 MiB, a body that is not JSON, JSON the strict loader refuses, a NUL byte or lone
surrogate in a path id, query parameter, header or body string: each gets its stable error
here, so no view, schema or database ever sees such input. Also the request id.
"""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Flask, g, request

from gateway.errors import GatewayError, not_found
from gateway.jsonio import InvalidJSON, bad_strings, has_forbidden, strict_loads

MAX_BODY_BYTES = 1024 * 1024
REQUEST_ID_HEADER = "X-Request-Id"
# Printable ASCII without spaces, bounded: safe to echo in a header and to log.
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
# The JSON API; its bodies other than JSON are read only by these (the token endpoint's form).
API_PREFIX = "/api/"
FORM_ENDPOINTS = frozenset({"ops.Token"})

log = logging.getLogger("gateway.requests")


def init_app(app: Flask) -> None:
    """Register before authentication (wiring) so these answers need no token."""
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_BODY_BYTES)
    app.before_request(take_request_id)
    app.before_request(check_request)
    app.after_request(echo_request_id)


def take_request_id() -> None:
    g.started_at = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _REQUEST_ID.match(given) else secrets.token_hex(16)


def echo_request_id(response):
    rid = g.get("request_id") or secrets.token_hex(16)
    response.headers[REQUEST_ID_HEADER] = rid
    took = time.perf_counter() - g.get("started_at", time.perf_counter())
    log.info("request_id=%s method=%s path=%s endpoint=%s status=%s duration_ms=%.1f", rid,
             request.method, request.path, request.endpoint, response.status_code, took * 1000)
    return response


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "")


def check_request() -> None:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise GatewayError(413, "payload_too_large",
                           f"The body is larger than {MAX_BODY_BYTES} bytes (1 MiB).")
    if request.endpoint is None:
        return  # routing answers 404/405 itself
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and has_forbidden(value):
            raise not_found(name.removesuffix("_id").replace("_", " "))
    bad = {name: ["Must not contain NUL bytes or lone surrogates."]
           for name, value in request.headers.items()
           if name.lower() != "authorization" and has_forbidden(value)}
    if bad:
        raise GatewayError(422, "invalid_header", "A header holds a NUL byte or a lone surrogate.",
                           errors=bad)
    bad = {name: ["Must not contain NUL bytes or lone surrogates."]
           for name, value in request.args.items(multi=True) if has_forbidden(value)}
    if bad:
        raise GatewayError(422, "validation_error", "The query string is not valid.", errors=bad)
    if not request.path.startswith(API_PREFIX) or request.endpoint in FORM_ENDPOINTS or not _has_body():
        return  # pages post forms; the token endpoint takes one too
    if not request.is_json:
        raise GatewayError(415, "unsupported_media_type",
                           "Send the body as JSON (Content-Type: application/json).")
    try:
        body = strict_loads(request.get_data(cache=True))
    except InvalidJSON as exc:
        raise GatewayError(400, "invalid_json", str(exc)) from exc
    bad = bad_strings(body)
    if bad:
        raise GatewayError(422, "validation_error",
                           "A string holds a NUL byte or a lone surrogate.",
                           errors={path: ["Must not contain NUL bytes or lone surrogates."]
                                   for path in bad})
