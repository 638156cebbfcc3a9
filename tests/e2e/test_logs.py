"""Logs: one JSON line per request and per domain step, with the request id, and no secret in
any line of a whole walk (tokens, client secrets, webhook secrets, payment tokens)."""

from __future__ import annotations

import json
import time

import pytest

from gateway import logs
from tests.conftest import Http, TestIssuer, build_app, make_world
from tests.integration.webhook_receiver import Receiver


def _lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.fixture
def walk(tmp_path, capsys):
    from gateway.auth.signing import create_client

    app = build_app(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, LOG_FORMAT="json")
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        creds = create_client(db, "walker", "admin billing read")
        db.close()
    client = app.test_client()
    token = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": creds["client_id"],
        "client_secret": creds["client_secret"]}).get_json()["access_token"]
    admin = Http(client, token)
    receiver = Receiver().start()
    try:
        r = admin.post("/api/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
        receiver.secret = r.get_json()["secret"]
        w = make_world(admin, TestIssuer.new(), "logged", country="US", currency="USD",
                       start="2026-01-01")
        w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
            "token": "pm_tok_very_secret_42", "brand": "visa", "last4": "4242", "exp_month": 1,
            "exp_year": 2099})
        r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                           json={"items": [{"subscription_id": w.subscription_id, "plan": "business"}]},
                           headers={"Idempotency-Key": "log-walk-1", "X-Request-Id": "walk-42"})
        assert r.status_code == 201, r.get_json()
        assert r.headers["X-Request-Id"] == "walk-42"
        deadline = time.monotonic() + 15
        while "order.completed" not in receiver.types() and time.monotonic() < deadline:
            app.extensions["gateway.queue"].wait_idle()
            time.sleep(0.1)
        assert admin.get("/metrics").status_code == 200
        assert client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.token"}
                          ).status_code == 401
        secrets = {token, creds["client_secret"], receiver.secret, "pm_tok_very_secret_42",
                   w.billing.token, w.member.token, receiver.secret.removeprefix("whsec_")}
        yield capsys.readouterr().err, secrets, w
    finally:
        receiver.stop()
        app.extensions["gateway.db"].dispose()


def test_no_secret_reaches_a_log_line(walk):
    text, secrets, _ = walk
    assert len(_lines(text)) > 15
    assert not {s for s in secrets if s in text}
    assert "Bearer" not in text and "whsec_" not in text


def test_one_json_line_per_request_with_its_id_route_caller_and_tenant(walk):
    text, _, w = walk
    requests = [x for x in _lines(text) if x["logger"] == "gateway.requests"]
    placed = [x for x in requests if x.get("request_id") == "walk-42"]
    assert len(placed) == 1
    line = placed[0]
    assert line["method"] == "POST" and line["status"] == 201
    assert line["route"] == "/api/v1/accounts/<account_id>/orders"
    assert (line["caller_kind"], line["tenant"]) == ("contact", w.tenant_id)
    assert line["caller_subject"] == "billing@logged"
    assert isinstance(line["duration_ms"], float)
    refused = [x for x in requests if x["status"] == 401]
    assert refused and refused[0]["caller_kind"] is None and refused[0]["request_id"]


def test_domain_steps_are_logged_with_the_request_id(walk):
    text, _, w = walk
    steps = [x for x in _lines(text) if x["logger"] in ("gateway.domain", "gateway.webhooks")]
    by_msg = {}
    for x in steps:
        by_msg.setdefault(x["msg"], []).append(x)
    assert by_msg["order placed"][0]["request_id"] == "walk-42"
    assert by_msg["order routed"][0]["route"] == "billing_center"
    assert by_msg["order applied"][0]["order_id"] == by_msg["order placed"][0]["order_id"]
    # carried out by the job queue, and still named after the request that placed it
    assert by_msg["order applied"][0]["request_id"] == "walk-42"
    assert {x["event_type"] for x in by_msg["webhook delivered"]} >= {"order.created",
                                                                      "order.completed"}


def test_text_format_for_people(tmp_path, capsys):
    app = build_app(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, LOG_FORMAT="text")
    try:
        r = app.test_client().get("/healthz", headers={"X-Request-Id": "txt-1"})
        assert r.headers["X-Request-Id"] == "txt-1"
        err = capsys.readouterr().err
        line = next(x for x in err.splitlines() if "[txt-1]" in x)
        assert "GET /healthz 200" in line and "route=/healthz" in line
        assert not line.lstrip().startswith("{")
    finally:
        logs.configure("json")  # the handler is process-wide
        app.extensions["gateway.db"].dispose()


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", "ünïcode"])
def test_a_request_id_that_cannot_be_echoed_safely_is_replaced(app, given):
    r = app.test_client().get("/healthz", headers={"X-Request-Id": given})
    rid = r.headers["X-Request-Id"]
    assert rid != given and len(rid) == 32
