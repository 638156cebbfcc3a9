"""Assembles the app: database, keys, identity, queue, adapters, API and CLI."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from gateway import cli, clock, logs, metrics
from gateway.api import register_api
from gateway.auth import protector
from gateway.auth.jwks import JWKSCache
from gateway.auth.keys import key_set, load_or_create, public_jwks
from gateway.auth.signing import make_authorization_server
from gateway.database import Database, close_session
from gateway.errors import GatewayError


def init_app(app: Flask) -> None:
    cfg = app.config
    instance = Path(cfg["INSTANCE_PATH"])
    app.extensions["gateway.db"] = Database(cfg["DATABASE_URL"])
    app.teardown_appcontext(close_session)
    app.extensions["gateway.clock"] = cfg.get("CLOCK") or clock.from_settings(cfg)

    own = load_or_create(Path(cfg["SIGNING_KEY_FILE"] or instance / "signing-key.pem"))
    app.extensions["gateway.own_key"] = own
    app.extensions["gateway.own_keys"] = key_set(public_jwks(own))
    app.extensions["gateway.jwks"] = public_jwks(own)
    if cfg["DEV_ISSUER"]:
        dev = load_or_create(instance / "dev-issuer-key.pem")
        app.extensions["gateway.dev_key"] = dev
        app.extensions["gateway.dev_jwks"] = public_jwks(dev)
    app.extensions["gateway.jwks_cache"] = JWKSCache(
        cfg["JWKS_CACHE_TTL"], cfg["JWKS_REFETCH_INTERVAL"]
    )
    app.extensions["gateway.oauth_server"] = make_authorization_server(app, own)
    app.extensions["gateway.protector"] = protector.make_protector()

    from adapters import wiring as adapters_wiring

    adapters_wiring.init_app(app)
    from gateway.orders.jobs import tick

    if hasattr(app.extensions["gateway.queue"], "relay"):
        app.extensions["gateway.queue"].relay = tick  # the in-process queue runs it when idle

    logs.init_app(app)  # before authentication: a refused request has its id and line too
    api = register_api(app)
    app.register_error_handler(GatewayError, api.handle_gateway_error)
    metrics.init_app(app)
    app.before_request(protector.authenticate)
    cli.register(app)
