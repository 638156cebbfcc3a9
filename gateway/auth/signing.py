"""Our own issuer: service tokens by client credentials, and the development issuer."""

from __future__ import annotations

import secrets
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.security import check_password_hash, generate_password_hash

from gateway.database import session
from gateway.errors import payload
from gateway.jsonio import has_forbidden
from tenants.models import ServiceClient

SCOPES = ("admin", "billing", "read")
DEV_ISSUER_PATH = "/dev-issuer"


class OAuthClient(ClientMixin):
    """authlib's view of a stored service client."""

    def __init__(self, row: ServiceClient):
        self.row = row

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        allowed = self.row.scopes.split()
        if not scope:
            return " ".join(allowed)
        granted = " ".join(s for s in scope.split() if s in allowed)
        if not granted:  # a token with no scope at all is of no use to anyone
            raise InvalidScopeError("The client holds none of the requested scopes.")
        return granted

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return check_password_hash(self.row.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"


class ServiceTokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer: str, audience: str, key: RSAKey, ttl: int):
        super().__init__(issuer, expires_generator=lambda client, grant_type: ttl)
        self.audience = audience
        self.key = key

    def get_jwks(self):
        # A key set, so that the token's header names the key (kid) it was signed with.
        return KeySet([self.key])

    def get_audiences(self, client, user, scope):
        return self.audience


class TokenServer(AuthorizationServer):
    def handle_error_response(self, request, error):
        # RFC 6749's error fields, inside the API's one error shape.
        status, body, headers = error(self.get_error_uri(request, error))
        code = body.pop("error")
        if code == "invalid_client":
            # One answer for an unknown client and a wrong secret: no probing for client ids.
            status, body = 401, {"error_description": "Client authentication failed."}
            headers = [h for h in headers if h[0].lower() != "www-authenticate"]
            headers.append(("WWW-Authenticate", 'Basic realm="billing-gateway"'))
        message = body.get("error_description") or f"The token request was refused ({code})."
        return self.handle_response(status, payload(status, code, message, **body), headers)


def make_authorization_server(app, key: RSAKey) -> AuthorizationServer:
    def query_client(client_id):
        if not isinstance(client_id, str) or len(client_id) > 60 or has_forbidden(client_id):
            return None  # what the column cannot hold is no client: invalid_client, no query
        row = session().get(ServiceClient, client_id)
        return OAuthClient(row) if row else None

    server = TokenServer(app, query_client=query_client, save_token=lambda *a: None)
    server.register_grant(ClientCredentialsGrant)
    server.register_token_generator(
        "client_credentials",
        ServiceTokenGenerator(
            app.config["ISSUER"], app.config["AUDIENCE"], key, app.config["SERVICE_TOKEN_TTL"]
        ),
    )
    ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    return server


def create_client(db, name: str, scopes: str) -> dict:
    unknown = set(scopes.split()) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes: {' '.join(sorted(unknown))}")
    client_id = "cli_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    db.add(ServiceClient(client_id=client_id, secret_hash=generate_password_hash(secret),
                         name=name, scopes=" ".join(scopes.split())))
    db.commit()
    return {"client_id": client_id, "client_secret": secret}


def mint(key: RSAKey, *, issuer: str, audience: str, subject: str, ttl: int = 3600,
         client_id: str = "dev-sign-in", **extra) -> str:
    """A signed at+jwt as an IdP would issue it (development issuer, demo and tests)."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": now, "exp": now + ttl,
              "jti": secrets.token_hex(12), "client_id": client_id, **extra}
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)
