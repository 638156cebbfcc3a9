"""The pages' OpenID Connect client: authorization code with PKCE (authlib's Flask client),
one registration per issuer and web client, metadata discovered from the issuer."""

from __future__ import annotations

import hashlib

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app

from tenants.models import Issuer


def init_app(app: Flask) -> None:
    app.extensions["gateway.oidc"] = OAuth(app)


def client(issuer: Issuer):
    oauth: OAuth = current_app.extensions["gateway.oidc"]
    # A changed client id or secret is a new registration: the old one is never used again.
    digest = hashlib.sha256(
        f"{issuer.url}|{issuer.web_client_id}|{issuer.web_client_secret}".encode()).hexdigest()[:24]
    name = f"iss_{digest}"
    found = oauth.create_client(name)
    if found is not None:
        return found
    oauth.register(
        name,
        client_id=issuer.web_client_id,
        client_secret=issuer.web_client_secret,
        server_metadata_url=issuer.url.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic",
                       "timeout": current_app.config["ADAPTER_TIMEOUT"]},
    )
    return oauth.create_client(name)


def claims_options(issuer: Issuer) -> dict:
    """Every check of an ID token named: its issuer, that it is for us, that it is current."""
    return {"iss": {"essential": True, "value": issuer.url},
            "aud": {"essential": True, "value": issuer.web_client_id},
            "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}
