"""The HTTP API: flask-smorest blueprints, each view one use-case call."""

from __future__ import annotations

from flask import Flask

from gateway.api.openapi import ErrorSchema, StandardErrors
from gateway.errors import Api

PUBLIC_ENDPOINTS = {
    "ops.Healthz", "ops.Readyz", "ops.Jwks", "ops.Token", "ops.DevJwks",
    "api-docs.openapi_json", "web_docs.docs", "static",
}


class GatewayApi(Api):
    ERROR_SCHEMA = ErrorSchema  # api.md's error shape, not flask-smorest's default


def register_api(app: Flask) -> Api:
    from gateway.api import (
        accounts,
        advisor_queue,
        catalog,
        events,
        identity,
        licenses,
        ops,
        orders,
        portal,
        quotes,
        tenants,
        webhooks,
    )

    api = GatewayApi(app, spec_kwargs={"security": [{"bearerAuth": []}],
                                       "extra_plugins": [StandardErrors()]})
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for module in (ops, identity, catalog, tenants, accounts, licenses, quotes, orders,
                   portal, advisor_queue, events, webhooks):
        api.register_blueprint(module.blp, url_prefix=getattr(module, "URL_PREFIX", "/api/v1"))
    app.extensions["gateway.public_endpoints"] = frozenset(PUBLIC_ENDPOINTS)
    return api
