"""One error shape for the whole API: code, status, a stable `error` and a human `message`."""

from __future__ import annotations

from http import HTTPStatus

from flask_smorest import Api as _Api
from werkzeug.exceptions import HTTPException

# Default stable codes for errors raised by Flask/werkzeug rather than by our own code.
_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
}
# Where webargs found a request's fields (it nests their errors under these).
_LOCATIONS = frozenset({"json", "query", "form", "headers", "cookies", "files", "path"})


class GatewayError(Exception):
    """A refusal the caller can act on: HTTP status, stable code, message, extra keys."""

    def __init__(self, status: int, error: str, message: str, **extra):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra


def not_found(what: str = "resource") -> GatewayError:
    return GatewayError(404, "not_found", f"No such {what}.")


def payload(status: int, error: str, message: str, **extra) -> dict:
    body = {"code": status, "status": HTTPStatus(status).phrase, "error": error, "message": message}
    body.update(extra)
    return body


class Api(_Api):
    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        code = error.code or 500
        # webargs also passes the exception and the schema along: internals, not the caller's
        extra = {k: v for k, v in data.items()
                 if k not in ("message", "messages", "headers", "exc", "schema")}
        messages = data.get("messages")
        errors = extra.pop("errors", None) or messages
        if errors and code == 422:
            extra["errors"] = _by_field(errors)
        default_code = _DEFAULT_CODES.get(code, "error")
        if code == 400 and isinstance(messages, dict) and "json" in messages:
            default_code = "invalid_json"  # webargs could not read the body
        body = payload(
            code,
            extra.pop("error", default_code),
            data.get("message") or _default_message(code, error, messages),
            **extra,
        )
        return body, code, data.get("headers", {})

    def handle_gateway_error(self, error: GatewayError):
        extra = error.extra
        if error.status == 422 and "errors" not in extra:
            # api.md: a 422 always says what is wrong, field -> messages; a refusal of the request
            # as a whole goes under "_schema", where marshmallow puts whole-body errors too
            extra = dict(extra, errors={"_schema": [error.message]})
        return payload(error.status, error.error, error.message, **extra), error.status


def handle_database_unavailable(error):
    """The database is unreachable (outage, restart, failover): a retry will do, not a 500."""
    body = payload(503, "database_unavailable",
                   "The database is unavailable; retry shortly (same Idempotency-Key for orders).")
    return body, 503, {"Retry-After": "1"}


def _by_field(errors):
    """webargs nests field errors by location ("json", "query"); callers name fields."""
    if isinstance(errors, dict) and errors.keys() <= _LOCATIONS and all(
            isinstance(by_field, dict) for by_field in errors.values()):
        return {field: msgs for by_field in errors.values() for field, msgs in by_field.items()}
    return errors


# Werkzeug's own descriptions ("The browser (or proxy) sent a request that this server could
# not understand.") speak of browsers; callers of an API get these instead.
_MESSAGES = {
    400: "The request is not valid.",
    401: "A bearer token is required.",
    403: "The token does not give this right.",
    404: "No such resource.",
    405: "This method is not allowed here.",
    413: "The body is larger than 1 MiB.",
    415: "Send the body as JSON (Content-Type: application/json).",
}
_WHERE = {"json": "The request body is not valid.", "query": "The query string is not valid.",
          "headers": "A header is not valid.", "path": "The path is not valid.",
          "form": "The form is not valid."}


def _default_message(code: int, error: HTTPException, messages=None) -> str:
    if code == 400 and isinstance(messages, dict) and "json" in messages:
        return "The body is not valid JSON."
    if code == 422:
        where = [w for w in _WHERE if isinstance(messages, dict) and w in messages]
        return _WHERE[where[0]] if len(where) == 1 else "The request is not valid."
    if code >= 500:
        return "Internal error."
    return _MESSAGES.get(code) or HTTPStatus(code).phrase
