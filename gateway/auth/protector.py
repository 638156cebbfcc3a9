"""The one resource protector: authlib parses and validates, flask-smorest answers."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import current_app, g, request
from flask_smorest import abort
from sqlalchemy import exists, select

from gateway.auth import principal as principals
from gateway.auth.keys import key_set
from gateway.auth.verify import TokenRejected, TrustedIssuer, verify_remembered
from gateway.database import session
from tenants.models import Issuer, TenantIssuer

REALM = "billing-gateway"


class _Rejected(InvalidTokenError):
    def __init__(self, rejected: TokenRejected):
        super().__init__(description=rejected.description, realm=REALM)
        self.reason = rejected.reason


class GatewayTokenValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        try:
            return verify_remembered(token_string, find_issuer,
                                     current_app.extensions["gateway.cache"])
        except TokenRejected as exc:
            raise _Rejected(exc) from exc

    def validate_token(self, token, scopes, request):
        # Rights are decided per resource once the principal is known (gateway.access).
        return None


class Protector(ResourceProtector):
    def raise_error_response(self, error):
        # Raised through flask-smorest so the JSON error shape and WWW-Authenticate survive.
        headers = dict(error.get_headers())
        if error.status_code == 401 and "WWW-Authenticate" not in headers:
            headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
        if isinstance(error, _Rejected):
            abort(401, error="invalid_token", reason=error.reason,
                  message=error.description, headers=headers)
        if error.error == "missing_authorization":
            headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
            abort(401, error="missing_token", message="A bearer token is required.",
                  headers=headers)
        abort(401, error="invalid_token", reason=error.error,
              message="Use an Authorization: Bearer <token> header.", headers=headers)


def make_protector() -> Protector:
    protector = Protector()
    protector.register_token_validator(GatewayTokenValidator(realm=REALM))
    return protector


def find_issuer(url: str) -> TrustedIssuer | None:
    cfg = current_app.config
    ext = current_app.extensions
    if url == cfg["ISSUER"]:
        own = ext["gateway.own_keys"]
        return TrustedIssuer(url, cfg["AUDIENCE"], "own", None, False, lambda kid: own)
    # Cached with its imported keys: no query and no JWKS import per request (gateway.cache).
    return ext["gateway.cache"].get("issuer", url, lambda: _load_issuer(url))


def _load_issuer(url: str) -> TrustedIssuer | None:
    ext = current_app.extensions
    db = session()
    found = db.execute(select(Issuer, exists().where(TenantIssuer.issuer_id == Issuer.id))
                       .where(Issuer.url == url)).first()
    if found is None:
        return None
    row, trusted = found
    if not (trusted or row.staff):
        return None
    if row.jwks:
        inline = key_set(row.jwks)

        def keys(kid):
            return inline
    else:
        cache = ext["gateway.jwks_cache"]

        def keys(kid):
            try:
                return cache.get(row.jwks_uri, kid=kid)
            except Exception as exc:  # the IdP is down or answers nonsense
                raise TokenRejected("keys_unavailable",
                                    "The issuer's keys could not be fetched.") from exc
    return TrustedIssuer(url, row.audience, "external", row.id, row.allow_jwt_typ, keys,
                         staff=row.staff, tenant_trusted=bool(trusted))


def authenticate() -> None:
    """before_request: every endpoint not explicitly public needs a valid token."""
    ext = current_app.extensions
    if request.endpoint in ext["gateway.public_endpoints"] or request.endpoint is None or (
        request.endpoint in ext.get("gateway.page_endpoints", ())  # session cookie (gateway.web)
    ):
        return
    protector = current_app.extensions["gateway.protector"]
    cache = current_app.extensions["gateway.cache"]
    cache.refresh(session())  # before any cached issuer is trusted
    try:
        verified = protector.acquire_token()
    except OAuth2Error as error:
        protector.raise_error_response(error)
    g.principal = principals.resolve(session(), verified, cache)
