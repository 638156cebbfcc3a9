"""The gateway's front door: `create_app` builds everything; nothing is built at import."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from gateway.config import check_production, from_environment


def create_app(overrides: dict | None = None) -> Flask:
    settings = from_environment(overrides)
    check_production(settings)
    app = Flask("gateway", instance_path=settings["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(settings)
    app.config.update(
        API_TITLE="Billing gateway",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # /docs is served by gateway.web from vendored Swagger UI assets (no CDN).
        JSON_SORT_KEYS=False,
    )
    from gateway.jsonio import JSONProvider

    app.json = JSONProvider(app)
    Path(settings["INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True)

    from gateway import wiring

    wiring.init_app(app)
    return app
