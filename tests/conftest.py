"""Shared fixtures: apps on SQLite or PostgreSQL, real signed tokens, seeded tenants."""

from __future__ import annotations

import os
import secrets
import shutil
import time
import uuid
from dataclasses import dataclass

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

REQUIRE = os.environ.get("GATEWAY_TEST_REQUIRE_SERVICES") == "1"
AUDIENCE = "billing-gateway"


def _unavailable(what: str, why: str):
    if REQUIRE:
        pytest.fail(f"{what} is required (GATEWAY_TEST_REQUIRE_SERVICES=1) but unavailable: {why}")
    pytest.skip(f"{what} not available: {why}")


# -- services --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server():
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    if not url:
        _unavailable("PostgreSQL", "GATEWAY_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    except Exception as exc:
        _unavailable("PostgreSQL", str(exc))
    yield engine
    engine.dispose()


def _create_database(server, template: str | None = None) -> tuple[str, str]:
    from sqlalchemy import text

    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    return name, server.url.set(database=name).render_as_string(hide_password=False)


def _drop_database(server, name: str) -> None:
    from sqlalchemy import text

    with server.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_template(postgres_server):
    """A database migrated to head by this session's run of the migrations: each test's database
    is a copy of it (CREATE DATABASE ... TEMPLATE), not a migration run of its own. Never kept
    across sessions, so it is always the current migrations' schema."""
    from gateway.migrate import upgrade

    name, url = _create_database(postgres_server)
    try:
        upgrade(url)  # NullPool (migrations/env.py): no connection lingers to block the copies
    except BaseException:
        _drop_database(postgres_server, name)
        raise
    yield name
    _drop_database(postgres_server, name)


@pytest.fixture
def postgres_url(postgres_server, postgres_template):
    """A fresh database for one test, already at the migrations' head; dropped afterwards."""
    name, url = _create_database(postgres_server, postgres_template)
    yield url
    _drop_database(postgres_server, name)


@pytest.fixture
def empty_postgres_url(postgres_server):
    """A fresh, empty database (no migration run): for the tests of the migrations themselves."""
    name, url = _create_database(postgres_server)
    yield url
    _drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def redis_server_url():
    url = os.environ.get("GATEWAY_TEST_REDIS_URL")
    if not url:
        _unavailable("Redis", "GATEWAY_TEST_REDIS_URL is not set")
    from redis import Redis

    try:
        Redis.from_url(url).ping()
    except Exception as exc:
        _unavailable("Redis", str(exc))
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A SQLite file migrated to head once per session; each test gets a copy of it."""
    from gateway.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "gateway.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template):
    """A fresh SQLite database for one test (a copy of the migrated template)."""
    path = tmp_path / "gateway.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    """A fresh database at the migrations' head, on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


# -- apps ------------------------------------------------------------------------------------
def build_app(db_url: str, tmp_path, **overrides):
    from gateway import create_app
    from gateway.migrate import upgrade

    upgrade(db_url)  # a database copied from a template is at head already: a no-op (a version read)
    settings = {"DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp_path / "instance"),
                "REDIS_URL": None, "JOB_BACKOFF_SCALE": 0.01, "FROZEN_TODAY": None,
                # Another app on the same database (a served copy, a worker) sees changes at once.
                "CACHE_MAX_AGE": 0}
    settings.update(overrides)
    app = create_app(settings)
    app.config["TESTING"] = True
    _apps.append(app)
    return app


_apps: list = []


@pytest.fixture(autouse=True)
def _stop_background_work():
    """No worker thread outlives its test (its database may be dropped next)."""
    yield
    while _apps:
        extensions = _apps.pop().extensions
        for worker in (extensions.get("gateway.queue"), extensions.get("gateway.relayer")):
            if hasattr(worker, "stop"):
                worker.stop()


@pytest.fixture
def app(sqlite_url, tmp_path):
    app = build_app(sqlite_url, tmp_path)
    yield app
    app.extensions["gateway.db"].dispose()


@pytest.fixture
def any_app(db_url, tmp_path):
    """The same app on SQLite and on PostgreSQL."""
    app = build_app(db_url, tmp_path)
    yield app
    app.extensions["gateway.db"].dispose()


# -- identity --------------------------------------------------------------------------------
@dataclass
class TestIssuer:
    """An IdP of our own making: real RSA keys, real signed at+jwt tokens."""

    __test__ = False

    url: str
    key: RSAKey
    audience: str = AUDIENCE

    @classmethod
    def new(cls, name: str | None = None) -> TestIssuer:
        name = name or secrets.token_hex(4)
        key = RSAKey.generate_key(2048, parameters={"kid": f"k-{name}"})
        return cls(f"https://idp-{name}.example", key)

    @property
    def jwks(self) -> dict:
        return {"keys": [dict(self.key.as_dict(private=False), alg="RS256")]}

    def spec(self) -> dict:
        return {"issuer": self.url, "audience": self.audience, "jwks": self.jwks}

    def token(self, subject: str, *, header: dict | None = None, key: RSAKey | None = None,
              **claims) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": subject, "aud": self.audience, "iat": now,
                "exp": now + 600, "jti": secrets.token_hex(8), "client_id": "spa"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = {"alg": "RS256", "typ": "at+jwt", "kid": (key or self.key).kid}
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        return jwt.encode(head, body, key or self.key)


class Http:
    """A test client that speaks JSON and carries a bearer token."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Http:
        return Http(self.client, token)

    def call(self, method: str, path: str, json=None, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return self.client.open(path, method=method, json=json, headers=h)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.call("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def service_token(app, scopes: str = "admin billing read") -> str:
    from gateway.auth.signing import create_client

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        creds = create_client(db, f"test-{scopes}", scopes)
        db.close()
    client = app.test_client()
    r = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                          "client_id": creds["client_id"],
                                          "client_secret": creds["client_secret"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["access_token"]


@pytest.fixture
def admin_http(app):
    return Http(app.test_client(), service_token(app))


WEBINAR = {"name": "Webinar", "plans": [
    {"code": "free", "name": "Free", "rank": 0, "prices": [
        {"currency": c, "billing_period": p, "unit_amount": "0"}
        for c in ("EUR", "USD") for p in ("monthly", "annual")]},
    {"code": "lite", "name": "Lite", "rank": 1, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "19.00"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "150.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "19.00"}]},
    {"code": "standard", "name": "Standard", "rank": 2, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "29.00"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "290.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "29.00"}]},
    {"code": "business", "name": "Business", "rank": 3, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "49.00"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "490.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "49.00"},
        {"currency": "USD", "billing_period": "annual", "unit_amount": "490.00"}]},
]}


@dataclass
class World:
    """A tenant with one account, a billing contact, a plain member and a subscription."""

    tenant_id: str
    account_id: str
    subscription_id: str
    issuer: TestIssuer
    billing: Http
    member: Http


def make_world(admin: Http, issuer: TestIssuer, slug: str, *, country="DE", currency="EUR",
               channel="online", terms="card", plan="standard", licenses=5, period="monthly",
               start="2026-02-20", status="active", vat_number=None, balance="0",
               advisor_id=None) -> World:
    admin.put("/api/v1/catalog/products/webinar", json=WEBINAR)
    r = admin.post("/api/v1/tenants", json={"name": slug.title(), "slug": slug,
                                            "issuers": [issuer.spec()]})
    assert r.status_code == 201, r.get_json()
    tenant_id = r.get_json()["id"]
    body = {"name": f"{slug} account", "country": country, "currency": currency,
            "billing_channel": channel, "payment_terms": terms, "credit_balance": balance}
    if vat_number:
        body["vat_number"] = vat_number
    if advisor_id:
        body["advisor_id"] = advisor_id
    r = admin.post(f"/api/v1/tenants/{tenant_id}/accounts", json=body)
    assert r.status_code == 201, r.get_json()
    account_id = r.get_json()["id"]
    for subject, roles in ((f"billing@{slug}", ["billing_contact"]), (f"member@{slug}", ["user"])):
        r = admin.post(f"/api/v1/accounts/{account_id}/contacts", json={
            "subject": subject, "name": subject, "email": f"{subject.replace('@', '.')}@x.example",
            "roles": roles})
        assert r.status_code == 201, r.get_json()
    r = admin.post(f"/api/v1/accounts/{account_id}/subscriptions", json={
        "product": "webinar", "plan": plan, "licenses": licenses, "billing_period": period,
        "status": status, "current_period_start": start})
    assert r.status_code == 201, r.get_json()
    return World(tenant_id, account_id, r.get_json()["id"], issuer,
                 admin.as_(issuer.token(f"billing@{slug}")), admin.as_(issuer.token(f"member@{slug}")))
