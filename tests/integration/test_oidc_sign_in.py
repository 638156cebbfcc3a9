"""Sign-in against an outside OpenID provider on loopback: a good ID token opens a session;
every defect in it (issuer, audience, expiry, nonce, signature, missing) is refused."""

from __future__ import annotations

import secrets
import threading
import time
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.conftest import Http, service_token
from tests.live import LiveGateway, free_port

CLIENT_ID, CLIENT_SECRET = "gateway-web", "s3cret-" + secrets.token_hex(8)


class FakeIdP:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
        self.other = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.defect = None
        self.subject = "pat@partner.example"
        self.requests: dict[str, dict] = {}
        app = Flask("fake-idp")

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(issuer=self.url, authorization_endpoint=self.url + "/authorize",
                           token_endpoint=self.url + "/token", jwks_uri=self.url + "/jwks",
                           id_token_signing_alg_values_supported=["RS256"],
                           response_types_supported=["code"], subject_types_supported=["public"])

        @app.get("/jwks")
        def jwks():
            return jsonify(keys=[dict(self.key.as_dict(private=False), alg="RS256")])

        @app.get("/authorize")
        def authorize():
            args = request.args
            assert args["code_challenge_method"] == "S256" and args["code_challenge"]
            code = secrets.token_urlsafe(16)
            self.requests[code] = dict(args)
            return redirect(args["redirect_uri"] + "?" + urlencode({"code": code, "state": args["state"]}))

        @app.post("/token")
        def token():
            auth = request.authorization
            assert auth and (auth.username, auth.password) == (CLIENT_ID, CLIENT_SECRET)
            asked = self.requests.pop(request.form["code"])
            assert request.form.get("code_verifier")  # PKCE: the verifier comes back
            now = int(time.time())
            claims = {"iss": self.url, "aud": CLIENT_ID, "sub": self.subject, "iat": now,
                      "exp": now + 300, "nonce": asked.get("nonce")}
            key = self.key
            if self.defect == "wrong_issuer":
                claims["iss"] = "https://impostor.example"
            elif self.defect == "wrong_audience":
                claims["aud"] = "someone-else"
            elif self.defect == "expired":
                claims.update(iat=now - 7200, exp=now - 3600)
            elif self.defect == "wrong_nonce":
                claims["nonce"] = "replayed"
            elif self.defect == "no_nonce":
                del claims["nonce"]
            elif self.defect == "bad_signature":
                key = self.other
            body = {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300}
            if self.defect != "no_id_token":
                body["id_token"] = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, key)
            return jsonify(body)

        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


@pytest.fixture
def idp():
    server = FakeIdP()
    yield server
    server.stop()


@pytest.fixture
def gateway(sqlite_url, tmp_path, idp):
    gw = LiveGateway.start(sqlite_url, tmp_path)
    admin = Http(gw.app.test_client(), service_token(gw.app))
    spec = {"issuer": idp.url, "audience": "billing-gateway", "jwks_uri": idp.url + "/jwks",
            "web_client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}
    r = admin.post("/api/v1/tenants", json={"name": "Partner", "slug": "partner", "issuers": [spec]})
    assert r.status_code == 201, r.get_json()
    # The secret is write-only: the answer names the client, never its secret.
    assert r.get_json()["issuers"][0]["web_client"] == {"client_id": CLIENT_ID}
    assert CLIENT_SECRET not in r.get_data(as_text=True)
    tenant = r.get_json()["id"]
    assert CLIENT_SECRET not in admin.get(f"/api/v1/tenants/{tenant}").get_data(as_text=True)
    account = admin.post(f"/api/v1/tenants/{tenant}/accounts", json={
        "name": "Partner Ltd", "country": "IE", "currency": "EUR", "billing_channel": "online",
        "payment_terms": "card"}).get_json()["id"]
    r = admin.post(f"/api/v1/accounts/{account}/contacts", json={
        "subject": idp.subject, "name": "Pat Partner", "email": "pat@partner.example",
        "roles": ["billing_contact"]})
    assert r.status_code == 201, r.get_json()
    yield gw
    gw.stop()


def test_a_verified_id_token_opens_a_session(gateway, idp):
    b = gateway.browser()
    page = b.get("/login?tenant=partner")
    assert page.status_code == 200 and urlsplit(page.url).path == "/"
    assert "Partner Ltd" in page.text


@pytest.mark.parametrize("defect", ["wrong_issuer", "wrong_audience", "expired", "wrong_nonce",
                                    "no_nonce", "bad_signature", "no_id_token"])
def test_an_id_token_with_a_defect_is_refused(gateway, idp, defect):
    idp.defect = defect
    b = gateway.browser()
    page = b.get("/login?tenant=partner")
    assert page.status_code == 400 and "Sign-in failed" in page.text
    assert urlsplit(b.get("/").url).path == "/login"


def test_a_replayed_callback_is_refused(gateway, idp):
    b = gateway.browser()
    first = b.http.get(gateway.url + "/login?tenant=partner", allow_redirects=False)
    to_idp = b.http.get(first.headers["Location"], allow_redirects=False)
    callback = to_idp.headers["Location"]
    assert b.http.get(callback, timeout=30).status_code == 200  # signed in
    replay = gateway.browser()  # another browser with the same code and state
    assert replay.get(callback).status_code == 400


def test_an_issuer_without_web_client_cannot_be_used_to_sign_in(sqlite_url, tmp_path, idp):
    gw = LiveGateway.start(sqlite_url, tmp_path)
    try:
        admin = Http(gw.app.test_client(), service_token(gw.app))
        spec = {"issuer": idp.url, "audience": "billing-gateway", "jwks_uri": idp.url + "/jwks"}
        assert admin.post("/api/v1/tenants", json={"name": "P", "slug": "partner",
                                                   "issuers": [spec]}).status_code == 201
        page = gw.browser().get("/login?tenant=partner")
        assert page.status_code == 409 and not idp.requests
    finally:
        gw.stop()
