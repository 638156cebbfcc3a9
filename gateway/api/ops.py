"""Operations: health, readiness, metrics, our JWKS and the token endpoint."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import fields

from gateway import metrics
from gateway.access import require_any_scope
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.schemas import Strict, TokenSchema
from gateway.ops import readiness

blp = Blueprint("ops", __name__, description="Operations and our own issuer")
URL_PREFIX = ""
PUBLIC = {"security": []}
PROMETHEUS_TEXT = {200: {"description": "Prometheus text exposition format",
                           "content": {"text/plain": {"schema": {"type": "string"}}}}}
TOKEN_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"], "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string", "maxLength": 60},
        "client_secret": {"type": "string", "maxLength": 200},
        "scope": {"type": "string", "maxLength": 200}}}}}}


class HealthSchema(Strict):
    status = fields.String(metadata={"example": "ok"})


class ReadySchema(Strict):
    database = fields.String(metadata={"description": "ok, or error: <kind>"})
    queue = fields.String(metadata={"description": "ok, or error: <kind>"})


class JwksSchema(Strict):
    keys = fields.List(fields.Dict(), metadata={"description": "RFC 7517 public keys"})


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.doc(**PUBLIC)
    @blp.response(200, HealthSchema)
    def get(self):
        """Process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.doc(**PUBLIC)
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, schema=ReadySchema, description="Database or queue unreachable")
    def get(self):
        """Database and queue reachable."""
        checks = readiness()
        return checks, (200 if all(v == "ok" for v in checks.values()) else 503)


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(responses=PROMETHEUS_TEXT)
    def get(self):
        """Prometheus metrics (a service token with scope read or admin)."""
        # Not among api.md's public routes: the scraper sends a bearer token like any system.
        require_any_scope(frozenset({"read", "admin"}), "read")
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")


@blp.route("/.well-known/jwks.json")
class Jwks(MethodView):
    @blp.doc(**PUBLIC)
    @blp.response(200, JwksSchema)
    def get(self):
        """Public keys of our service tokens."""
        return current_app.extensions["gateway.jwks"]


@blp.route("/dev-issuer/jwks.json")
class DevJwks(MethodView):
    @blp.doc(**PUBLIC)
    @blp.response(200, JwksSchema)
    @refuses(blp, (404, "not_found"))
    def get(self):
        """Public keys of the development issuer (development only)."""
        keys = current_app.extensions.get("gateway.dev_jwks")
        if keys is None:
            from gateway.errors import not_found

            raise not_found("development issuer")
        return keys


@blp.route("/oauth/token")
class Token(MethodView):
    @blp.doc(requestBody=TOKEN_FORM, **PUBLIC)
    @blp.response(200, TokenSchema)
    @refuses(blp, (400, "invalid_request"), (400, "unsupported_grant_type"),
             (400, "invalid_scope"), (401, "invalid_client"))
    def post(self):
        """Client credentials grant: a service token."""
        return current_app.extensions["gateway.oauth_server"].create_token_response()
