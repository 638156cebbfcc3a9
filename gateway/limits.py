"""Request limits, checked before authentication and before any view or query runs.

A body over 1 MiB, a body that is not JSON, JSON the strict loader refuses, a NUL byte or lone
surrogate in a path id, query parameter, header or body string: each gets its stable error
here, so no view, schema or database ever sees such input.
"""

from __future__ import annotations

from flask import Flask, request

from gateway.errors import GatewayError, not_found
from gateway.jsonio import InvalidJSON, bad_strings, has_forbidden, strict_loads

MAX_BODY_BYTES = 1024 * 1024
# The JSON API; its bodies other than JSON are read only by these (the token endpoint's form).
API_PREFIX = "/api/"
FORM_ENDPOINTS = frozenset({"ops.Token"})


def init_app(app: Flask) -> None:
    """Register before authentication (wiring) so these answers need no token."""
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_BODY_BYTES)
    # The request id (taken, made, echoed and logged) is gateway.logs', registered before this.
    app.before_request(check_request)


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
