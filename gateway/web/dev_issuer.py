"""The development issuer as an OpenID provider (embedded default only; production refuses the
development issuer altogether): discovery, an authorization endpoint whose sign-in page lists
the demo people, and a token endpoint. authlib's authorization server does the protocol."""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import current_app, jsonify, render_template, request
from sqlalchemy import select

from gateway.auth.signing import DEV_ISSUER_PATH, mint
from gateway.database import session as db_session
from gateway.web import pages
from tenants.models import Account, Advisor, Contact, Issuer, Membership, Tenant

bp = pages.blueprint("web_dev_issuer", __name__, url_prefix=DEV_ISSUER_PATH)
CODE_TTL = 120
SCOPES = ("openid", "profile", "email")


def issuer_url() -> str:
    return current_app.config["ISSUER"] + DEV_ISSUER_PATH


@dataclass(frozen=True)
class Person:
    subject: str
    name: str
    email: str


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: Person
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class CodeStore:
    """Codes live two minutes in this process: the development issuer runs in one."""

    def __init__(self):
        self._codes: dict[str, Code] = {}
        self._lock = threading.Lock()

    def put(self, code: Code) -> None:
        with self._lock:
            now = time.time()
            self._codes = {k: v for k, v in self._codes.items() if now - v.auth_time < CODE_TTL}
            self._codes[code.code] = code

    def get(self, code: str) -> Code | None:
        with self._lock:
            found = self._codes.get(code)
        if found is None or time.time() - found.auth_time >= CODE_TTL:
            return None
        return found

    def pop(self, code: str) -> None:
        with self._lock:
            self._codes.pop(code, None)

    def has_nonce(self, nonce: str) -> bool:
        with self._lock:
            return any(c.nonce == nonce for c in self._codes.values())


def store() -> CodeStore:
    return current_app.extensions["gateway.dev_codes"]


class WebClient(ClientMixin):
    """The gateway's pages as a client of the development issuer (the issuer's web_client)."""

    def __init__(self, row: Issuer):
        self.row = row

    def get_client_id(self):
        return self.row.web_client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        # Only back to this gateway's own callback.
        parts = urlsplit(redirect_uri)
        own = urlsplit(request.host_url)
        return (parts.scheme, parts.netloc, parts.path) == (own.scheme, own.netloc, "/auth/callback") \
            and not parts.query and not parts.fragment

    def check_client_secret(self, client_secret):
        return hmac.compare_digest((self.row.web_client_secret or "").encode(),
                                   (client_secret or "").encode())

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, req):
        data = req.payload.data
        store().put(Code(code=code, client_id=req.client.get_client_id(),
                         redirect_uri=req.payload.redirect_uri, scope=req.scope or "openid",
                         nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                         code_challenge_method=data.get("code_challenge_method"), user=req.user))

    def query_authorization_code(self, code, client):
        found = store().get(code)
        if found is not None and found.client_id == client.get_client_id():
            return found
        return None

    def delete_authorization_code(self, authorization_code):
        store().pop(authorization_code.code)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class RequiredChallenge(CodeChallenge):
    """PKCE on every request, confidential client or not."""

    def validate_code_challenge(self, grant, redirect_uri):
        if not grant.request.payload.data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'")
        super().validate_code_challenge(grant, redirect_uri)


class DevOpenIDCode(OpenIDCode):
    def exists_nonce(self, nonce, req):
        return store().has_nonce(nonce)

    def resolve_client_private_key(self, client):
        return current_app.extensions["gateway.dev_key"]

    def get_client_claims(self, client):
        return {"iss": issuer_url(), "aud": [client.get_client_id()]}

    def get_encode_header(self, client):
        return {"alg": "RS256", "kid": current_app.extensions["gateway.dev_key"].kid}

    def generate_user_info(self, user, scope):
        return UserInfo(sub=user.subject, name=user.name, email=user.email)


def _access_token(grant_type, client, user=None, scope=None, expires_in=None,
                  include_refresh_token=True):
    ttl = 3600
    token = mint(current_app.extensions["gateway.dev_key"], issuer=issuer_url(),
                 audience=current_app.config["AUDIENCE"], subject=user.subject, ttl=ttl,
                 client_id=client.get_client_id())
    return {"token_type": "Bearer", "access_token": token, "expires_in": ttl, "scope": scope}


def _query_client(client_id):
    row = db_session().scalar(select(Issuer).where(Issuer.url == issuer_url()))
    if row is None or not row.web_client_id or not hmac.compare_digest(
            row.web_client_id.encode(), (client_id or "").encode()):
        return None
    return WebClient(row)


def init_app(app) -> None:
    server = AuthorizationServer(app, query_client=_query_client, save_token=lambda *a: None)
    server.register_grant(CodeGrant, [RequiredChallenge(required=True), DevOpenIDCode(require_nonce=True)])
    server.register_token_generator("authorization_code", _access_token)
    app.extensions["gateway.dev_oidc_server"] = server
    app.extensions["gateway.dev_codes"] = CodeStore()


def server() -> AuthorizationServer:
    return current_app.extensions["gateway.dev_oidc_server"]


@bp.get("/.well-known/openid-configuration")
def discovery():
    base = issuer_url()
    return jsonify({
        "issuer": base,
        "authorization_endpoint": base + "/authorize",
        "token_endpoint": base + "/token",
        "jwks_uri": base + "/jwks.json",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "name", "email", "iss", "aud", "exp", "iat", "nonce"],
    })


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    try:
        server().get_consent_grant()
    except OAuth2Error as error:
        return pages.error_page(400, "Sign-in request refused", error.get_error_description() or error.error)
    people = demo_people()
    if request.method == "GET":
        return render_template("dev_signin.html", people=people)
    chosen = next((p for p in people if p["subject"] == request.form.get("subject")), None)
    if chosen is None:
        return render_template("dev_signin.html", people=people), 422
    return server().create_authorization_response(
        grant_user=Person(chosen["subject"], chosen["name"], chosen["email"]))


@bp.post("/token")
def token():
    return server().create_token_response()


def demo_people() -> list[dict]:
    """Everyone the development issuer vouches for: contacts (with their accounts) and advisors."""
    db = db_session()
    row = db.scalar(select(Issuer).where(Issuer.url == issuer_url()))
    if row is None:
        return []
    out: dict[str, dict] = {}
    found = db.execute(
        select(Contact.subject, Contact.name, Contact.email, Membership.roles, Account.name,
               Tenant.name)
        .join(Membership, Membership.contact_id == Contact.id)
        .join(Account, Account.id == Membership.account_id)
        .join(Tenant, Tenant.id == Contact.tenant_id)
        .where(Contact.issuer_id == row.id)
        .order_by(Tenant.name, Contact.name)).all()
    for subject, name, email, roles, account, tenant in found:
        person = out.setdefault(subject, {"subject": subject, "name": name, "email": email,
                                          "kind": "contact", "roles": [], "where": []})
        person["roles"] = sorted(set(person["roles"]) | set(roles or ()))
        person["where"].append(f"{tenant} ({account})")
    advisors = db.execute(select(Advisor.subject, Advisor.name, Advisor.email, Advisor.pool)
                          .where(Advisor.issuer_id == row.id).order_by(Advisor.name)).all()
    for subject, name, email, pool in advisors:
        out.setdefault(subject, {"subject": subject, "name": name, "email": email,
                                 "kind": "advisor", "roles": ["advisor"], "where": [pool]})
    return list(out.values())
