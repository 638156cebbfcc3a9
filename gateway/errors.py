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
        errors = extra.pop("errors", None) or data.get("messages")
        if errors and code == 422:
            extra["errors"] = _by_field(errors)
        body = payload(
            code,
            extra.pop("error", _DEFAULT_CODES.get(code, "error")),
            data.get("message") or _default_message(code, error),
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


def _by_field(errors):
    """webargs nests field errors by location ("json", "query"); callers name fields."""
    if isinstance(errors, dict) and errors.keys() <= _LOCATIONS and all(
            isinstance(by_field, dict) for by_field in errors.values()):
        return {field: msgs for by_field in errors.values() for field, msgs in by_field.items()}
    return errors


def _default_message(code: int, error: HTTPException) -> str:
    if code == 422:
        return "The request body is not valid."
    if code >= 500:
        return "Internal error."
    return error.description or HTTPStatus(code).phrase
