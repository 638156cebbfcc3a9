"""Assembles the app: database, keys, identity, queue, adapters, API and CLI."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy.exc import InterfaceError, OperationalError

from gateway import cli, clock, limits, logs, metrics
from gateway.api import register_api
from gateway.auth import protector
from gateway.auth.jwks import JWKSCache
from gateway.auth.keys import key_set, load_or_create, public_jwks
from gateway.auth.signing import make_authorization_server
from gateway.cache import ConfigCache
from gateway.database import Database, close_session
from gateway.errors import GatewayError, handle_database_unavailable


def init_app(app: Flask) -> None:
    cfg = app.config
    instance = Path(cfg["INSTANCE_PATH"])
    app.extensions["gateway.clock"] = clock.from_settings(cfg)
    app.extensions["gateway.cache"] = ConfigCache(cfg["CACHE_MAX_AGE"])
    app.extensions["gateway.db"] = Database(cfg["DATABASE_URL"], app.extensions["gateway.clock"],
                                            app.extensions["gateway.cache"])
    app.teardown_appcontext(close_session)

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
    from gateway.orders.jobs import relay_outbox, tick

    queue = app.extensions["gateway.queue"]
    if hasattr(queue, "poke"):
        queue.relay = tick  # the in-process queue runs it when idle
        queue.relay_outbox = relay_outbox
        app.extensions["gateway.relay"] = queue.poke
    else:  # RQ: a thread of this process relays, not the request (after commits or periodically)
        from adapters.outbox import Relayer

        database = app.extensions["gateway.db"]
        # On PostgreSQL the workers relay, notified by the commit (adapters.outbox): this process
        # only passes periodically, in case none listens.
        relayer = Relayer(database.sessionmaker, queue, cfg["TICK_SECONDS"],
                          pending=database.outbox_pending,
                          on_commit=database.dialect != "postgresql")
        app.extensions["gateway.relay"] = relayer.poke
        app.extensions["gateway.relayer"] = relayer

    logs.init_app(app)  # before authentication: a refused request has its id and line too
    api = register_api(app)
    app.register_error_handler(GatewayError, api.handle_gateway_error)
    for lost in (OperationalError, InterfaceError):  # connection-level: retryable
        app.register_error_handler(lost, handle_database_unavailable)
    metrics.init_app(app)
    limits.init_app(app)  # before authentication: limits need no token
    from gateway import web

    web.init_app(app)
    app.before_request(protector.authenticate)
    cli.register(app)
