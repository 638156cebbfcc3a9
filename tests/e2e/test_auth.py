"""Authentication and authorisation at the door: every bad token is a 401 with the one error
shape and a WWW-Authenticate header; a good token without the right is a 403."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from joserfc import jws, jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.security import check_password_hash

from tests.conftest import AUDIENCE, Http, TestIssuer, build_app, make_world, service_token

ERROR_KEYS = {"code", "status", "error", "message"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: dict) -> str:
    return b64url(json.dumps(obj).encode())


def unb64json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def claims_for(issuer: TestIssuer, subject: str, **extra) -> dict:
    now = int(time.time())
    return {"iss": issuer.url, "sub": subject, "aud": issuer.audience, "iat": now,
            "exp": now + 600, "jti": "jti-1", "client_id": "spa", **extra}


def untyped_token(issuer: TestIssuer, subject: str) -> str:
    """Signed properly but with no typ header (joserfc's jwt.encode would add typ JWT)."""
    claims = json.dumps(claims_for(issuer, subject)).encode()
    return jws.serialize_compact({"alg": "RS256", "kid": issuer.key.kid}, claims, issuer.key)


def assert_401(r, reason: str | None = None, error: str = "invalid_token"):
    assert r.status_code == 401, r.get_data(as_text=True)
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer")
    body = r.get_json()
    assert ERROR_KEYS <= set(body), body
    assert (body["code"], body["status"], body["error"]) == (401, "Unauthorized", error)
    assert body["message"]
    if reason is not None:
        assert body["reason"] == reason, body


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """One app for the read-only checks (each test builds nothing: the suite stays fast)."""
    tmp = tmp_path_factory.mktemp("auth")
    app = build_app(f"sqlite:///{tmp / 'gateway.db'}", tmp)
    admin = Http(app.test_client(), service_token(app))
    worlds = (make_world(admin, TestIssuer.new("a"), "acme"),
              make_world(admin, TestIssuer.new("b"), "globex"))
    yield SimpleNamespace(app=app, admin=admin, worlds=worlds)
    app.extensions["gateway.db"].dispose()


@pytest.fixture
def app(env):
    return env.app


@pytest.fixture
def admin_http(env):
    return env.admin


@pytest.fixture
def world(env):
    return env.worlds[0]


@pytest.fixture
def other_world(env):
    return env.worlds[1]


def me(http: Http, token: str | None):
    return http.as_(token).get("/api/v1/me")


# -- the token is missing or unusable --------------------------------------------------------
def test_a_valid_contact_token_is_let_in(admin_http, world):
    r = me(admin_http, world.issuer.token("billing@acme"))
    assert r.status_code == 200
    assert r.get_json()["kind"] == "contact"


def test_no_token(admin_http, world):
    assert_401(me(admin_http, None), error="missing_token")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_other_authorization_schemes(app, header):
    assert_401(app.test_client().get("/api/v1/me", headers={"Authorization": header}))


@pytest.mark.parametrize("token", [
    "not-a-jwt", "a.b.c", "a.b", "....",
    b64json({"alg": "RS256"}) + "." + b64url(b"not json") + ".c2ln",
    b64json({"alg": "RS256"}) + "." + b64url(b"[1, 2]") + ".c2ln",
], ids=["no-dots", "garbage", "two-parts", "empty-parts", "payload-not-json", "payload-not-object"])
def test_malformed(admin_http, world, token):
    assert_401(me(admin_http, token), "malformed")


@pytest.mark.parametrize(("claims", "reason"), [
    ({"exp": -120}, "expired"),
    ({"nbf": 600}, "not_yet_valid"),
    ({"iat": 600}, "not_yet_valid"),
], ids=["expired", "nbf-in-future", "iat-in-future"])
def test_outside_its_lifetime(admin_http, world, claims, reason):
    now = int(time.time())
    token = world.issuer.token("billing@acme", **{k: now + v for k, v in claims.items()})
    assert_401(me(admin_http, token), reason)


def test_wrong_audience(admin_http, world):
    assert_401(me(admin_http, world.issuer.token("billing@acme", aud="someone-else")), "wrong_audience")


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "client_id", "aud"])
def test_missing_required_claim(admin_http, world, missing):
    token = world.issuer.token("billing@acme", **{missing: None})
    assert_401(me(admin_http, token))


def test_unknown_issuer(admin_http, world):
    stranger = TestIssuer.new("stranger")
    assert_401(me(admin_http, stranger.token("billing@acme")), "unknown_issuer")


def test_issuer_a_key_with_issuer_b_iss(admin_http, world, other_world):
    """Both issuers are trusted (by different tenants); A's key must not vouch for B."""
    a, b = world.issuer, other_world.issuer
    token = b.token("billing@globex", key=a.key)  # kid of A's key: B does not publish it
    assert_401(me(admin_http, token), "unknown_key")


def test_issuer_a_key_claiming_issuer_b_kid(admin_http, world, other_world):
    a, b = world.issuer, other_world.issuer
    token = b.token("billing@globex", key=a.key, header={"kid": b.key.kid})
    assert_401(me(admin_http, token), "bad_signature")


def test_alg_none(admin_http, world):
    token = (b64json({"alg": "none", "typ": "at+jwt"}) + "."
             + b64json(claims_for(world.issuer, "billing@acme")) + ".")
    assert_401(me(admin_http, token), "algorithm_refused")


def test_hs256_signed_with_the_rsa_public_key(admin_http, world):
    """The classic key-confusion attack: HMAC keyed with the issuer's public PEM."""
    issuer = world.issuer
    signing_input = (b64json({"alg": "HS256", "typ": "at+jwt", "kid": issuer.key.kid}) + "."
                     + b64json(claims_for(issuer, "billing@acme")))
    public_pem = issuer.key.as_pem(private=False)
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert_401(me(admin_http, signing_input + "." + b64url(signature)), "algorithm_refused")


def test_unknown_kid_inline_jwks(admin_http, world):
    rogue = RSAKey.generate_key(2048, parameters={"kid": "rogue"})
    assert_401(me(admin_http, world.issuer.token("billing@acme", key=rogue)), "unknown_key")


def test_forged_with_the_issuers_kid(admin_http, world):
    rogue = RSAKey.generate_key(2048, parameters={"kid": world.issuer.key.kid})
    assert_401(me(admin_http, world.issuer.token("billing@acme", key=rogue)), "bad_signature")


def test_tampered_payload(admin_http, world):
    head, body, sig = world.issuer.token("member@acme").split(".")
    claims = unb64json(body)
    claims["sub"] = "billing@acme"
    assert_401(me(admin_http, f"{head}.{b64json(claims)}.{sig}"), "bad_signature")


def test_hand_made_tokens_pass_when_nothing_is_wrong(admin_http, world):
    """The hand-built tokens below fail for the one reason each test names, not another."""
    claims = json.dumps(claims_for(world.issuer, "billing@acme")).encode()
    token = jws.serialize_compact({"alg": "RS256", "typ": "at+jwt", "kid": world.issuer.key.kid},
                                  claims, world.issuer.key)
    assert me(admin_http, token).status_code == 200


def test_missing_typ(admin_http, world):
    token = untyped_token(world.issuer, "billing@acme")
    assert "typ" not in unb64json(token.split(".")[0])
    assert_401(me(admin_http, token), "wrong_type")


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt"])
def test_typ_jwt_refused_by_default(admin_http, world, typ):
    token = world.issuer.token("billing@acme", header={"typ": typ})
    assert_401(me(admin_http, token), "wrong_type")


@pytest.fixture(scope="module")
def legacy_issuer(env):
    """An issuer that still sends typ JWT and is let in explicitly (allow_jwt_typ)."""
    issuer = TestIssuer.new("legacy")
    r = env.admin.post("/api/v1/tenants", json={
        "name": "Legacy", "slug": "legacy", "issuers": [dict(issuer.spec(), allow_jwt_typ=True)]})
    assert r.status_code == 201, r.get_json()
    return issuer


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+jwt"])
def test_typ_jwt_accepted_when_the_issuer_allows_it(admin_http, legacy_issuer, typ):
    r = me(admin_http, legacy_issuer.token("anyone", header={"typ": typ}))
    assert r.status_code == 200, r.get_json()


def test_other_typ_still_refused_when_jwt_allowed(admin_http, legacy_issuer):
    assert_401(me(admin_http, legacy_issuer.token("anyone", header={"typ": "dpop+jwt"})), "wrong_type")


def test_missing_typ_still_refused_when_jwt_allowed(admin_http, legacy_issuer):
    assert_401(me(admin_http, untyped_token(legacy_issuer, "anyone")), "wrong_type")


def test_a_service_token_from_another_gateway_is_refused(app, tmp_path):
    """Same issuer URL, other signing key: our JWKS does not publish it."""
    other = build_app(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    try:
        foreign = service_token(other)
    finally:
        other.extensions["gateway.db"].dispose()
    assert_401(me(Http(app.test_client()), foreign))


# -- valid token, missing right: 403 ---------------------------------------------------------
@pytest.mark.parametrize(("scopes", "method", "path", "body"), [
    ("read", "POST", "/api/v1/tenants", {"name": "X", "slug": "x"}),
    ("billing", "PUT", "/api/v1/catalog/products/webinar", {"name": "W", "plans": [
        {"code": "free", "name": "Free", "rank": 0, "prices": []}]}),
    ("read billing", "POST", "/api/v1/staff-issuers", TestIssuer.new("s").spec()),
    ("read billing", "PATCH", "/api/v1/tenants/{tenant}", {"name": "Renamed"}),
], ids=["read-creates-tenant", "billing-edits-catalog", "read-billing-adds-staff-issuer",
        "read-billing-edits-tenant"])
def test_service_token_without_the_scope(app, admin_http, world, scopes, method, path, body):
    before = admin_http.get(f"/api/v1/tenants/{world.tenant_id}").get_json()
    path = path.format(tenant=world.tenant_id)
    r = Http(app.test_client(), service_token(app, scopes)).call(method, path, json=body)
    assert r.status_code == 403, r.get_json()
    assert ERROR_KEYS <= set(r.get_json())
    assert r.get_json()["error"] == "insufficient_scope"
    assert admin_http.get(f"/api/v1/tenants/{world.tenant_id}").get_json() == before


def test_service_token_without_admin_cannot_create_accounts(app, world):
    http = Http(app.test_client(), service_token(app, "read billing"))
    r = http.post(f"/api/v1/tenants/{world.tenant_id}/accounts", json={
        "name": "X", "country": "DE", "currency": "EUR", "billing_channel": "online",
        "payment_terms": "card"})
    assert r.status_code == 403 and r.get_json()["error"] == "insufficient_scope"


def test_not_a_billing_contact_is_told_whom_to_ask(admin_http, world):
    r = world.member.put(f"/api/v1/accounts/{world.account_id}/vat-number",
                         json={"vat_number": "DE136695976"})
    assert r.status_code == 403, r.get_json()
    body = r.get_json()
    assert ERROR_KEYS <= set(body)
    assert body["error"] == "not_billing_contact"
    assert body["billing_contacts"] == [{"name": "billing@acme", "email": "billing.acme@x.example"}]
    assert admin_http.get(f"/api/v1/accounts/{world.account_id}").get_json()["vat_number"] is None


def test_a_plain_member_still_reads_its_account(world):
    assert world.member.get(f"/api/v1/accounts/{world.account_id}").status_code == 200


# -- our own issuer: client credentials ------------------------------------------------------
@pytest.fixture
def client_creds(app):
    from gateway.auth.signing import create_client

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        creds = create_client(db, "crm", "billing read")
        db.close()
    return creds


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def token_request(app, creds, method: str, secret: str | None = None, scope: str | None = None):
    secret = creds["client_secret"] if secret is None else secret
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    if method == "basic":
        return app.test_client().post("/oauth/token", data=data, headers=basic(creds["client_id"], secret))
    data.update(client_id=creds["client_id"], client_secret=secret)
    return app.test_client().post("/oauth/token", data=data)


@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_credentials_token(app, client_creds, method):
    r = token_request(app, client_creds, method)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["SERVICE_TOKEN_TTL"]
    assert set(body["scope"].split()) == {"billing", "read"}
    who = me(Http(app.test_client()), body["access_token"])
    assert who.status_code == 200
    assert who.get_json()["kind"] == "service"
    assert set(who.get_json()["scopes"]) == {"billing", "read"}


def test_requested_scope_narrows_the_token(app, client_creds):
    r = token_request(app, client_creds, "post", scope="read")
    assert r.status_code == 200
    assert r.get_json()["scope"] == "read"
    assert me(Http(app.test_client()), r.get_json()["access_token"]).get_json()["scopes"] == ["read"]


def test_scope_the_client_does_not_hold_is_refused(app, client_creds):
    r = token_request(app, client_creds, "post", scope="admin")
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_scope"


def test_service_token_is_an_at_jwt_verifiable_with_our_jwks(app, client_creds):
    token = token_request(app, client_creds, "basic").get_json()["access_token"]
    header = unb64json(token.split(".")[0])
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    jwks = app.test_client().get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert header["kid"] in {k["kid"] for k in jwks.get_json()["keys"]}
    assert all("d" not in k for k in jwks.get_json()["keys"])  # public halves only
    decoded = jwt.decode(token, KeySet.import_key_set(jwks.get_json()), algorithms=["RS256"])
    assert decoded.claims["iss"] == app.config["ISSUER"]
    assert decoded.claims["aud"] == AUDIENCE
    assert decoded.claims["sub"] == decoded.claims["client_id"] == client_creds["client_id"]
    assert {"exp", "iat", "jti"} <= set(decoded.claims)


@pytest.mark.parametrize("method", ["basic", "post"])
def test_wrong_secret(app, client_creds, method):
    r = token_request(app, client_creds, method, secret="not-the-secret")
    assert r.status_code == 401
    assert "WWW-Authenticate" in r.headers
    body = r.get_json()
    assert ERROR_KEYS <= set(body) and body["error"] == "invalid_client"
    assert "access_token" not in body


def test_unknown_client(app):
    r = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "cli_nobody", "client_secret": "x"})
    assert r.status_code in (400, 401)
    assert r.get_json()["error"] == "invalid_client"


def test_other_grant_types_are_refused(app, client_creds):
    r = app.test_client().post("/oauth/token", data={
        "grant_type": "password", "username": "u", "password": "p"},
        headers=basic(client_creds["client_id"], client_creds["client_secret"]))
    assert r.status_code == 400
    assert r.get_json()["error"] == "unsupported_grant_type"


def test_cli_creates_a_client_with_a_hashed_secret(app):
    from tenants.models import ServiceClient

    result = app.test_cli_runner().invoke(args=["clients", "create", "crm", "--scopes", "admin billing read"])
    assert result.exit_code == 0, result.output
    creds = json.loads(result.output)
    assert set(creds) == {"client_id", "client_secret"}
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        row = db.get(ServiceClient, creds["client_id"])
        assert row.name == "crm" and row.scopes == "admin billing read"
        assert row.secret_hash != creds["client_secret"]
        assert creds["client_secret"] not in row.secret_hash
        assert check_password_hash(row.secret_hash, creds["client_secret"])
    finally:
        db.close()
    r = token_request(app, creds, "basic")
    assert r.status_code == 200
    assert set(r.get_json()["scope"].split()) == {"admin", "billing", "read"}


def test_cli_refuses_unknown_scopes(app):
    from sqlalchemy import func, select

    from tenants.models import ServiceClient

    result = app.test_cli_runner().invoke(args=["clients", "create", "refused", "--scopes", "admin root"])
    assert result.exit_code != 0
    assert "root" in result.output
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        assert db.scalar(select(func.count()).select_from(ServiceClient)
                         .where(ServiceClient.name == "refused")) == 0
    finally:
        db.close()


# -- issuers with jwks_uri: a real IdP on loopback -------------------------------------------
class FakeIdP:
    """Serves a JWKS over HTTP on 127.0.0.1 and counts how often it is asked."""

    def __init__(self):
        self.keys: list[RSAKey] = []
        self.hits = 0
        self.up = True
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                idp.hits += 1
                if not idp.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [dict(k.as_dict(private=False), alg="RS256")
                                            for k in idp.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.jwks_uri = f"http://127.0.0.1:{self.server.server_port}/jwks.json"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    server = FakeIdP()
    yield server
    server.close()


def trust_by_uri(admin: Http, idp: FakeIdP) -> TestIssuer:
    """A new tenant trusting a new issuer whose keys the loopback IdP serves (a fresh cache entry)."""
    slug = "remote-" + secrets.token_hex(4)
    issuer = TestIssuer.new(slug)
    idp.keys = [issuer.key]
    r = admin.post("/api/v1/tenants", json={"name": slug, "slug": slug, "issuers": [
        {"issuer": issuer.url, "audience": issuer.audience, "jwks_uri": idp.jwks_uri}]})
    assert r.status_code == 201, r.get_json()
    return issuer


def new_kid_token(issuer: TestIssuer, kid: str) -> tuple[RSAKey, str]:
    key = RSAKey.generate_key(2048, parameters={"kid": kid})
    return key, issuer.token("someone", key=key)


def test_jwks_uri_keys_are_fetched_and_cached(admin_http, idp):
    issuer = trust_by_uri(admin_http, idp)
    for _ in range(3):
        assert me(admin_http, issuer.token("someone")).status_code == 200
    assert idp.hits == 1


def test_unknown_kid_refetches_once_and_is_still_refused(admin_http, idp):
    issuer = trust_by_uri(admin_http, idp)
    assert me(admin_http, issuer.token("someone")).status_code == 200
    assert idp.hits == 1
    _, token = new_kid_token(issuer, "made-up-1")
    assert_401(me(admin_http, token), "unknown_key")
    assert idp.hits == 2


def test_unknown_kid_refetch_is_rate_limited(admin_http, idp):
    issuer = trust_by_uri(admin_http, idp)
    assert me(admin_http, issuer.token("someone")).status_code == 200
    assert_401(me(admin_http, new_kid_token(issuer, "made-up-1")[1]), "unknown_key")
    hits = idp.hits
    for kid in ("made-up-2", "made-up-3"):
        assert_401(me(admin_http, new_kid_token(issuer, kid)[1]), "unknown_key")
    assert idp.hits == hits


def test_unknown_kid_refetch_allowed_again_after_the_interval(app, admin_http, idp, monkeypatch):
    monkeypatch.setattr(app.extensions["gateway.jwks_cache"], "refetch_interval", 0)
    issuer = trust_by_uri(admin_http, idp)
    assert me(admin_http, issuer.token("someone")).status_code == 200
    for kid in ("made-up-1", "made-up-2"):
        assert_401(me(admin_http, new_kid_token(issuer, kid)[1]), "unknown_key")
    assert idp.hits == 3


def test_a_rotated_key_is_picked_up_by_the_refetch(admin_http, idp):
    issuer = trust_by_uri(admin_http, idp)
    assert me(admin_http, issuer.token("someone")).status_code == 200
    new_key = RSAKey.generate_key(2048, parameters={"kid": "rotated"})
    idp.keys = [issuer.key, new_key]
    assert me(admin_http, issuer.token("someone", key=new_key)).status_code == 200
    assert idp.hits == 2


def test_idp_down_is_a_401_not_a_500(admin_http, idp):
    issuer = trust_by_uri(admin_http, idp)
    idp.up = False
    assert_401(me(admin_http, issuer.token("someone")), "keys_unavailable")


def test_unknown_client_and_wrong_secret_get_the_same_answer(app):
    from gateway.auth.signing import create_client

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        creds = create_client(db, "probe", "read")
        db.close()
    http = app.test_client()
    answers = []
    for client_id, secret in (("cli_unknown", "x"), (creds["client_id"], "wrong")):
        for how in ("post", "basic"):
            if how == "post":
                r = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                    "client_id": client_id, "client_secret": secret})
            else:
                r = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(client_id, secret))
            answers.append((r.status_code, r.get_json()["error"], r.get_json()["message"],
                            "WWW-Authenticate" in r.headers))
    assert set(answers) == {(401, "invalid_client", "Client authentication failed.", True)}


def test_expired_key_cache_is_served_while_the_idp_is_down(idp):
    from gateway.auth.jwks import JWKSCache

    idp.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
    cache = JWKSCache(ttl=0, refetch_interval=30)
    assert [k.kid for k in cache.get(idp.jwks_uri).keys] == ["k1"]
    idp.up = False
    assert [k.kid for k in cache.get(idp.jwks_uri).keys] == ["k1"]  # stale, not a lock-out
    assert idp.hits == 2  # it did try the IdP again


def test_a_token_accepted_before_is_refused_once_its_issuer_is_no_longer_trusted(admin_http):
    """Verified tokens are remembered per process (gateway.auth.verify): a change of trust
    forgets them."""
    issuer = TestIssuer.new("dropped")
    r = admin_http.post("/api/v1/tenants", json={"name": "Dropping", "slug": "dropping",
                                                 "issuers": [issuer.spec()]})
    assert r.status_code == 201, r.get_json()
    token = issuer.token("someone@dropping")
    before = me(admin_http, token)
    assert before.status_code == 200, before.get_json()
    assert me(admin_http, token).status_code == 200  # the remembered verdict
    r = admin_http.patch(f"/api/v1/tenants/{r.get_json()['id']}",
                         json={"issuers": [TestIssuer.new("successor").spec()]})
    assert r.status_code == 200, r.get_json()
    assert_401(me(admin_http, token), "unknown_issuer")
