"""Operations: health, readiness, metrics, our JWKS and the token endpoint."""

from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from gateway import metrics
from gateway.access import require_any_scope
from gateway.api.schemas import TokenSchema
from gateway.ops import readiness

blp = Blueprint("ops", __name__, description="Operations and our own issuer")
URL_PREFIX = ""
PUBLIC = {"security": []}


@blp.route("/healthz")
class Healthz(MethodView):
    @blp.doc(**PUBLIC)
    def get(self):
        """Process is up."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readyz(MethodView):
    @blp.doc(**PUBLIC)
    def get(self):
        """Database and queue reachable."""
        checks = readiness()
        return checks, (200 if all(v == "ok" for v in checks.values()) else 503)


@blp.route("/metrics")
class Metrics(MethodView):
    def get(self):
        """Prometheus metrics (a service token with scope read or admin)."""
        # Not among api.md's public routes: the scraper sends a bearer token like any system.
        require_any_scope(frozenset({"read", "admin"}), "read")
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")


@blp.route("/.well-known/jwks.json")
class Jwks(MethodView):
    @blp.doc(**PUBLIC)
    def get(self):
        """Public keys of our service tokens."""
        return current_app.extensions["gateway.jwks"]


@blp.route("/dev-issuer/jwks.json")
class DevJwks(MethodView):
    @blp.doc(**PUBLIC)
    def get(self):
        """Public keys of the development issuer (development only)."""
        keys = current_app.extensions.get("gateway.dev_jwks")
        if keys is None:
            from gateway.errors import not_found

            raise not_found("development issuer")
        return keys


@blp.route("/oauth/token")
class Token(MethodView):
    @blp.doc(**PUBLIC)
    @blp.response(200, TokenSchema)
    def post(self):
        """Client credentials grant: a service token."""
        return current_app.extensions["gateway.oauth_server"].create_token_response()
