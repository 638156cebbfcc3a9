"""People's pages (design.md §6): server-rendered, on the same use cases as the API."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from gateway.web import i18n, oidc, security

csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    cfg = app.config
    if not cfg.get("SECRET_KEY"):
        # Derived from our signing key: one secret to keep, stable across restarts and workers.
        own = app.extensions["gateway.own_key"]
        cfg["SECRET_KEY"] = hashlib.sha256(b"gateway-pages|" + own.as_pem(private=True)).hexdigest()
    cfg.update(
        SESSION_COOKIE_NAME="gateway_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=cfg["ENV"] != "development",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=cfg["SESSION_HOURS"]),
        # The API takes bearer tokens only, so only the pages' own forms are checked.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    csrf.init_app(app)
    i18n.init_app(app)
    oidc.init_app(app)

    from gateway.web import advisor, auth, billing, dev_issuer, docs

    blueprints = [auth.bp, billing.bp, advisor.bp, docs.bp]
    if cfg["DEV_ISSUER"]:
        dev_issuer.init_app(app)
        blueprints.append(dev_issuer.bp)
    for bp in blueprints:
        app.register_blueprint(bp)
    security.init_app(app, {bp.name for bp in blueprints})
    # Pages authenticate with the session cookie, never with a bearer token: the API's door
    # (gateway.auth.protector) lets them by, and they let nobody in without a session.
    names = {bp.name for bp in blueprints}
    app.extensions["gateway.page_endpoints"] = frozenset(
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in names)
