"""Webhooks delivered to a loopback receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.webhooks.models import WebhookDelivery
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.tls import authority_and_server
from tests.integration.webhook_receiver import Receiver

FAST = {"WEBHOOK_BACKOFF_SECONDS": 0.05, "WEBHOOK_BACKOFF_MAX_SECONDS": 0.2}
# Every event type the gateway records, including those other modules add.
EVENT_TYPES = ["order.created", "subscription.updated", "order.completed", "order.rejected",
               "order.withdrawn", "advisor_case.opened", "advisor_case.resolved",
               "account.vat_number_invalidated", "webhook_endpoint.disabled"]


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def _app(db_url, tmp_path, **overrides):
    return build_app(db_url, tmp_path, **dict(FAST, **overrides))


def _endpoint(admin: Http, receiver: Receiver, events=("*",), **extra) -> dict:
    r = admin.post("/api/v1/webhook-endpoints", json=dict(url=receiver.url, events=list(events),
                                                          **extra))
    assert r.status_code == 201, r.get_json()
    receiver.secret = r.get_json()["secret"]
    return r.get_json()


def _record(app, *types, tenant_id="ten_x", relay=True):
    from gateway.database import session
    from gateway.services import events

    with app.app_context():
        db = session()
        for n, t in enumerate(types):
            events.record(db, t, tenant_id, {"n": n})
        db.commit()
        from gateway.orders.jobs import relay_outbox

        if relay:
            relay_outbox()  # which fans the events out first
        else:
            from gateway.webhooks.delivery import fan_out

            fan_out()


def _pump(app, until, timeout=15.0):
    """Run the periodic pass and the queue until `until()` holds."""
    from gateway.webhooks.delivery import schedule_due

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            schedule_due()
        app.extensions["gateway.queue"].wait_idle()
        if until():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _deliveries(admin, endpoint_id) -> list[dict]:
    r = admin.get(f"/api/v1/webhook-endpoints/{endpoint_id}/deliveries")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_every_event_type_is_delivered_signed_in_order(any_app, receiver):
    app = any_app
    app.config.update(FAST)
    admin = Http(app.test_client(), service_token(app))
    _endpoint(admin, receiver)
    _record(app, *EVENT_TYPES)
    _pump(app, lambda: len(receiver.accepted) == len(EVENT_TYPES))
    assert receiver.types() == EVENT_TYPES
    assert receiver.refused == []
    ids = receiver.event_ids()
    assert ids == sorted(ids)
    first = receiver.accepted[0]
    assert set(first.event) == {"id", "type", "tenant_id", "created_at", "data"}
    assert first.headers["webhook-id"].startswith("whd_")


def test_a_walk_through_the_api_is_pushed_as_it_happens(tmp_path, receiver):
    app = _app(f"sqlite:///{tmp_path / 'g.db'}", tmp_path)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "hooked", country="US", currency="USD",
                   start="2026-01-01")
    _endpoint(admin, receiver, tenant_id=w.tenant_id)
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": "k1"},
                       json={"items": [{"subscription_id": w.subscription_id, "plan": "business"}]})
    assert r.status_code == 201, r.get_json()
    _pump(app, lambda: "order.completed" in receiver.types())
    assert receiver.types() == ["order.created", "subscription.updated", "order.completed"]
    assert {e.event["tenant_id"] for e in receiver.accepted} == {w.tenant_id}


def test_an_endpoint_gets_only_its_tenant_and_its_event_types(any_app, receiver):
    app = any_app
    app.config.update(FAST)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "mine")
    _endpoint(admin, receiver, events=["order.completed"], tenant_id=w.tenant_id)
    _record(app, "order.created", "order.completed", tenant_id=w.tenant_id)
    _record(app, "order.completed", tenant_id="ten_other")
    _pump(app, lambda: len(receiver.accepted) >= 1)
    time.sleep(0.2)
    assert [(e.event["type"], e.event["tenant_id"]) for e in receiver.accepted] == [
        ("order.completed", w.tenant_id)]


def test_a_receiver_down_for_a_while_gets_everything_in_order_once(any_app, receiver):
    app = any_app
    app.config.update(FAST)
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    port = receiver.port
    receiver.stop()  # connection refused from here on
    _record(app, "order.created", "subscription.updated", "order.completed")
    _pump(app, lambda: _deliveries(admin, endpoint["id"])[0]["attempts"] >= 3)
    waiting = _deliveries(admin, endpoint["id"])
    assert [d["status"] for d in waiting] == ["pending"] * 3
    assert waiting[0]["last_error"] and waiting[0]["next_attempt_at"]
    assert [d["attempts"] for d in waiting[1:]] == [0, 0]  # N+1 waits while N is pending
    receiver.port = port
    receiver.start()
    _pump(app, lambda: len(receiver.accepted) == 3)
    time.sleep(0.2)
    assert receiver.types() == ["order.created", "subscription.updated", "order.completed"]
    assert len({r.message_id for r in receiver.accepted}) == 3
    done = _deliveries(admin, endpoint["id"])
    assert [d["status"] for d in done] == ["succeeded"] * 3
    assert done[0]["attempts"] >= 4 and [d["attempts"] for d in done[1:]] == [1, 1]


def test_two_workers_on_one_endpoint_send_each_event_once_in_order(any_app, receiver):
    app = any_app
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    receiver.delay = 0.05
    app.extensions["gateway.queue"].enqueue = lambda *a, **kw: None  # no job: two threads race
    _record(app, *["order.created"] * 5, relay=False)

    def work():
        from gateway.webhooks.delivery import deliver

        with app.app_context():
            deliver(endpoint["id"])

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = receiver.event_ids()
    assert len(ids) == 5 and ids == sorted(set(ids))


def test_410_disables_the_endpoint_and_enabling_resumes(any_app, receiver):
    app = any_app
    app.config.update(FAST)
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    receiver.answer = 410
    _record(app, "order.created")
    _pump(app, lambda: not admin.get(f"/api/v1/webhook-endpoints/{endpoint['id']}")
          .get_json()["enabled"])
    body = admin.get(f"/api/v1/webhook-endpoints/{endpoint['id']}").get_json()
    assert body["disabled_reason"].startswith("410")
    feed = admin.get("/api/v1/events").get_json()
    assert feed[-1]["type"] == "webhook_endpoint.disabled"
    assert feed[-1]["data"]["endpoint_id"] == endpoint["id"]
    _record(app, "order.completed")  # a disabled endpoint is not fanned out to
    assert [d["event_type"] for d in _deliveries(admin, endpoint["id"])] == ["order.created"]
    receiver.answer = 204
    r = admin.patch(f"/api/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True})
    assert r.status_code == 200 and r.get_json()["enabled"] is True
    _pump(app, lambda: receiver.types() == ["order.created"])


def test_deliveries_are_listed_and_a_failed_one_can_be_retried(any_app, receiver):
    app = any_app
    app.config.update(FAST, WEBHOOK_RETRY_HOURS=0)  # the first failure is the last
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    receiver.answer = 500
    _record(app, "order.created", "order.completed")
    _pump(app, lambda: [d["status"] for d in _deliveries(admin, endpoint["id"])] == ["failed"] * 2)
    first = _deliveries(admin, endpoint["id"])[0]
    assert first["attempts"] == 1 and first["last_status_code"] == 500
    assert "500" in first["last_error"] and first["next_attempt_at"] is None
    assert set(first) >= {"id", "event_id", "event_type", "status", "attempts",
                          "last_status_code", "last_error", "next_attempt_at"}
    receiver.answer = 204
    r = admin.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries/{first['id']}/retry")
    assert r.status_code == 202, r.get_json()
    _pump(app, lambda: receiver.types() == ["order.created"])
    again = _deliveries(admin, endpoint["id"])[0]
    assert again["status"] == "succeeded" and again["attempts"] == 2
    assert admin.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries/whd_nope/retry"
                      ).status_code == 404
    only_failed = admin.get(f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries?status=failed")
    assert [d["event_type"] for d in only_failed.get_json()] == ["order.completed"]


def test_endpoints_are_managed_by_admins_and_the_secret_is_shown_once(any_app, receiver):
    admin = Http(any_app.test_client(), service_token(any_app))
    reader = admin.as_(service_token(any_app, "read billing"))
    r = admin.post("/api/v1/webhook-endpoints", json={"url": receiver.url,
                                                      "events": ["order.completed"],
                                                      "description": "CRM"})
    assert r.status_code == 201
    created = r.get_json()
    assert created["secret"].startswith("whsec_") and created["tenant_id"] is None
    one = admin.get(f"/api/v1/webhook-endpoints/{created['id']}").get_json()
    assert "secret" not in one and one["events"] == ["order.completed"]
    assert all("secret" not in e for e in admin.get("/api/v1/webhook-endpoints").get_json())
    r = admin.patch(f"/api/v1/webhook-endpoints/{created['id']}",
                    json={"events": ["*"], "enabled": False})
    assert r.get_json()["events"] == ["*"] and r.get_json()["enabled"] is False
    assert reader.get("/api/v1/webhook-endpoints").status_code == 403
    assert reader.post("/api/v1/webhook-endpoints", json={"url": receiver.url,
                                                          "events": ["*"]}).status_code == 403
    assert admin.delete(f"/api/v1/webhook-endpoints/{created['id']}").status_code == 204
    assert admin.get(f"/api/v1/webhook-endpoints/{created['id']}").status_code == 404


@pytest.mark.parametrize("body", [
    {"url": "http://127.0.0.1:1/h", "events": []},
    {"url": "http://127.0.0.1:1/h", "events": ["*", "order.created"]},
    {"url": "http://127.0.0.1:1/h", "events": ["Order Created"]},
    {"url": "ftp://127.0.0.1/h", "events": ["*"]},
    {"url": "http://127.0.0.1:1/h", "events": ["*"], "secret": "mine"},
    {"url": "http://127.0.0.1:1/h", "events": ["*"], "tenant_id": "ten_unknown"},
])
def test_bad_endpoints_are_refused_and_nothing_is_stored(admin_http, body):
    r = admin_http.post("/api/v1/webhook-endpoints", json=body)
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["errors"]
    assert admin_http.get("/api/v1/webhook-endpoints").get_json() == []


# -- SSRF ------------------------------------------------------------------------------------
def _production_app(tmp_path, **overrides):
    from gateway.auth.keys import load_or_create

    key = Path(tmp_path / "prod-key.pem")
    load_or_create(key)
    return build_app(f"sqlite:///{tmp_path / 'prod.db'}", tmp_path, ENV="production",
                     DEV_ISSUER=False, SIGNING_KEY_FILE=str(key), **dict(FAST, **overrides))


@pytest.mark.parametrize(("url", "reason"), [
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10/hooks", "private"),
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://localhost/hooks", "loopback"),  # a DNS name that resolves to loopback
    ("http://hooks.example/hooks", "not_https"),
])
def test_production_refuses_private_targets(tmp_path, url, reason):
    app = _production_app(tmp_path)
    admin = Http(app.test_client(), service_token(app))
    r = admin.post("/api/v1/webhook-endpoints", json={"url": url, "events": ["*"]})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"] == "webhook_url_refused" and r.get_json()["reason"] == reason
    assert admin.get("/api/v1/webhook-endpoints").get_json() == []


def test_allow_private_lets_private_targets_through_but_keeps_https(tmp_path):
    app = _production_app(tmp_path, WEBHOOK_ALLOW_PRIVATE=True)
    admin = Http(app.test_client(), service_token(app))
    ok = admin.post("/api/v1/webhook-endpoints", json={"url": "https://10.1.2.3/h", "events": ["*"]})
    assert ok.status_code == 201
    assert admin.patch(f"/api/v1/webhook-endpoints/{ok.get_json()['id']}",
                       json={"enabled": False}).status_code == 200  # nothing is ever sent there
    r = admin.post("/api/v1/webhook-endpoints", json={"url": "http://10.1.2.3/h", "events": ["*"]})
    assert r.status_code == 422 and r.get_json()["reason"] == "not_https"


def test_the_address_is_checked_again_at_delivery_time(tmp_path):
    answers = {"hooks.example": ["93.184.215.14"]}  # public when registered ...
    app = _production_app(tmp_path, WEBHOOK_RESOLVER=lambda host: answers[host])
    admin = Http(app.test_client(), service_token(app))
    r = admin.post("/api/v1/webhook-endpoints", json={"url": "https://hooks.example/h",
                                                      "events": ["*"]})
    assert r.status_code == 201, r.get_json()
    answers["hooks.example"] = ["127.0.0.1"]  # ... loopback when delivering (DNS rebinding)
    _record(app, "order.created")
    endpoint_id = r.get_json()["id"]
    _pump(app, lambda: _deliveries(admin, endpoint_id)[0]["attempts"] >= 1)
    d = _deliveries(admin, endpoint_id)[0]
    assert d["status"] == "pending" and d["last_status_code"] is None
    assert d["last_error"].startswith("refused:") and "loopback" in d["last_error"]
    admin.delete(f"/api/v1/webhook-endpoints/{endpoint_id}")


# -- the connection goes where the check looked ---------------------------------------------
HOOKS_HOST = "hooks.example.test"  # resolved by the tests' resolver, never by DNS


@pytest.fixture
def tls_receiver(tmp_path):
    ca_file, context = authority_and_server(tmp_path / "tls", HOOKS_HOST)
    r = Receiver(tls=context, host=HOOKS_HOST).start()
    r.ca_file = str(ca_file)
    yield r
    r.stop()


@pytest.fixture
def rebinding_dns(monkeypatch):
    """The system resolver (outside our control) answers `answers[name]` for the names it
    holds: what a DNS server that changes its answer would say once the check has looked."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(answers.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _send(receiver: Receiver, **overrides):
    from adapters import webhook_sender

    receiver.secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    options = dict(development=False, allow_private=True, timeout=5.0,
                   resolver=lambda host: ["127.0.0.1"], ca_bundle=receiver.ca_file)
    return webhook_sender.send(receiver.url, receiver.secret, "msg_1", '{"type": "t", "id": 1}',
                               **dict(options, **overrides))


def test_a_delivery_connects_to_the_address_the_check_approved(tls_receiver, rebinding_dns):
    rebinding_dns[HOOKS_HOST] = "127.0.0.2"  # where DNS points once checked: nothing listens
    outcome = _send(tls_receiver)
    assert outcome.delivered, outcome
    assert tls_receiver.server_names == [HOOKS_HOST]  # the URL's name in the handshake (SNI)
    assert tls_receiver.host_headers == [f"{HOOKS_HOST}:{tls_receiver.port}"]
    assert [r.message_id for r in tls_receiver.accepted] == ["msg_1"]  # signed as before


def test_the_next_approved_address_is_tried_when_one_refuses(tls_receiver):
    outcome = _send(tls_receiver, resolver=lambda host: ["127.0.0.2", "127.0.0.1"])
    assert outcome.delivered, outcome


@pytest.mark.parametrize(("trusted", "name"), [
    (True, "other.example.test"),  # a certificate for another name (the address is ours)
    (False, HOOKS_HOST),  # signed by an authority not trusted (certifi's bundle)
])
def test_the_receiver_certificate_is_verified_for_the_url_name(tmp_path, trusted, name):
    ca_file, context = authority_and_server(tmp_path / "tls", name)
    receiver = Receiver(tls=context, host=HOOKS_HOST).start()
    receiver.ca_file = str(ca_file) if trusted else None
    try:
        outcome = _send(receiver)
    finally:
        receiver.stop()
    assert not outcome.delivered and outcome.status_code is None
    assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower(), outcome
    assert receiver.hits == 0


def test_production_delivers_to_a_pinned_https_receiver(tmp_path, tls_receiver, rebinding_dns):
    rebinding_dns[HOOKS_HOST] = "127.0.0.2"
    app = _production_app(tmp_path, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_CA_BUNDLE=tls_receiver.ca_file,
                          WEBHOOK_RESOLVER=lambda host: ["127.0.0.1"])
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, tls_receiver)
    _record(app, "order.created")
    _pump(app, lambda: tls_receiver.types() == ["order.created"])
    assert _deliveries(admin, endpoint["id"])[0]["status"] == "succeeded"
    admin.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}")


def test_persisted_delivery_rows_follow_event_order(any_app, receiver):
    admin = Http(any_app.test_client(), service_token(any_app))
    _endpoint(admin, receiver)
    _record(any_app, "order.created", "order.completed")
    with any_app.app_context():
        db = any_app.extensions["gateway.db"].sessionmaker()
        rows = db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.event_id)).all()
        assert [r.event_type for r in rows] == ["order.created", "order.completed"]
        db.close()


def test_no_job_is_sent_for_an_endpoint_whose_oldest_delivery_waits(any_app, receiver):
    from gateway.webhooks.delivery import schedule_due

    app = any_app
    app.config.update(WEBHOOK_BACKOFF_SECONDS=3600)
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    receiver.stop()
    _record(app, "order.created")
    _pump(app, lambda: _deliveries(admin, endpoint["id"])[0]["attempts"] == 1)
    _record(app, "order.completed", relay=False)  # due now, but behind one that waits an hour
    with app.app_context():
        assert schedule_due() == 0
    assert [d["attempts"] for d in _deliveries(admin, endpoint["id"])] == [1, 0]


def test_a_downgrade_withdrawn_by_the_contact_is_pushed(tmp_path, receiver):
    app = _app(f"sqlite:///{tmp_path / 'g.db'}", tmp_path)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "withdrawn", country="US", currency="USD",
                   start="2026-01-01")
    _endpoint(admin, receiver, events=["order.created", "advisor_case.opened", "order.withdrawn"])
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": "w1"},
                       json={"items": [{"subscription_id": w.subscription_id, "plan": "lite"}]})
    assert r.status_code == 201 and r.get_json()["status"] == "awaiting_advisor", r.get_json()
    r = w.billing.post(f"/api/v1/orders/{r.get_json()['id']}/withdraw")
    assert r.status_code == 200, r.get_json()
    _pump(app, lambda: "order.withdrawn" in receiver.types())
    assert receiver.types() == ["order.created", "advisor_case.opened", "order.withdrawn"]


def test_deliveries_page_with_limit_and_after(any_app, receiver):
    app = any_app
    admin = Http(app.test_client(), service_token(app))
    endpoint = _endpoint(admin, receiver)
    app.extensions["gateway.queue"].enqueue = lambda *a, **kw: None  # the rows hold still
    _record(app, *["order.created"] * 5, relay=False)
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    everything = admin.get(path).get_json()
    seen, url = [], path + "?limit=2"
    while url:
        r = admin.get(url)
        seen += r.get_json()
        link = r.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert seen == everything and len(seen) == 5
    bad = admin.get(path + "?after=whd_nope")
    assert bad.status_code == 422 and "after" in bad.get_json()["errors"]


def test_with_nobody_listening_the_fan_out_reads_nothing_and_a_new_endpoint_elsewhere_is_heard(
        postgres_url, tmp_path, receiver):
    from sqlalchemy import event as sa_event

    from gateway.webhooks.delivery import fan_out

    app = _app(postgres_url, tmp_path, CACHE_MAX_AGE=0.2)
    admin = Http(app.test_client(), service_token(app))
    statements = []
    sa_event.listen(app.extensions["gateway.db"].engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    with app.app_context():
        fan_out()  # learns that nobody listens
        statements.clear()
        fan_out()
    assert statements == []  # no endpoint read, no connection taken
    # Another process registers an endpoint (its own app, same database: it bumps the version).
    other = _app(postgres_url, tmp_path / "other")
    endpoint = _endpoint(Http(other.test_client(), service_token(other)), receiver)
    time.sleep(0.3)  # past CACHE_MAX_AGE: this process reads the version again
    _record(app, "order.created")
    _pump(app, lambda: len(_deliveries(admin, endpoint["id"])) == 1)
    assert _deliveries(admin, endpoint["id"])[0]["event_type"] == "order.created"


# -- event order across transactions (PostgreSQL: writers run side by side) -----------------
def _held_event(app, type_: str):
    """A session that has written an event (its id taken) and not committed yet."""
    from gateway.services import events

    db = app.extensions["gateway.db"].sessionmaker()
    events.record(db, type_, "ten_x", {"held": True})
    db.flush()
    return db


def _listened(postgres_url, tmp_path, receiver, **overrides):
    """An app on PostgreSQL with one endpoint, `receiver`, listening to every event."""
    app = _app(postgres_url, tmp_path, **overrides)
    _endpoint(Http(app.test_client(), service_token(app)), receiver)
    return app


def test_a_later_event_waits_for_an_earlier_one_still_being_written(postgres_url, tmp_path,
                                                                      receiver):
    from gateway.webhooks.delivery import fan_out

    app = _listened(postgres_url, tmp_path, receiver, WEBHOOK_GAP_WAIT_SECONDS=60)
    with app.app_context():
        slow = _held_event(app, "order.created")
        _record(app, "order.completed", relay=False)  # a later id, committed first
        assert fan_out() == 0  # it waits for the id before it
        slow.commit()
        slow.close()
        assert fan_out() == 2
    _pump(app, lambda: len(receiver.accepted) == 2)
    assert receiver.types() == ["order.created", "order.completed"]


def test_an_id_rolled_back_holds_the_later_events_only_for_the_gap_wait(postgres_url, tmp_path,
                                                                          receiver):
    from gateway.webhooks.delivery import fan_out

    app = _listened(postgres_url, tmp_path, receiver, WEBHOOK_GAP_WAIT_SECONDS=0.3)
    with app.app_context():
        lost = _held_event(app, "order.created")
        lost.rollback()  # its id never comes
        lost.close()
        _record(app, "order.completed", relay=False)
        assert fan_out() == 0
        time.sleep(0.4)
        assert fan_out() == 1
    _pump(app, lambda: receiver.types() == ["order.completed"])


def test_one_fan_out_pass_at_a_time(postgres_url, tmp_path, receiver):
    from sqlalchemy import func

    from gateway.webhooks import delivery

    app = _listened(postgres_url, tmp_path, receiver)
    with app.app_context():
        running = app.extensions["gateway.db"].sessionmaker()  # another process's pass
        running.execute(select(func.pg_advisory_xact_lock(delivery._FAN_OUT_LOCK)))
        _record(app, "order.created", relay=False)
        assert delivery.fan_out() == 0  # left to the pass that runs
        running.rollback()
        running.close()
        assert delivery.fan_out() == 1
