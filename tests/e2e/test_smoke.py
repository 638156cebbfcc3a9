from tests.conftest import TestIssuer, make_world


def test_health_is_public(app):
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_reports_database_and_queue(app):
    r = app.test_client().get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {"database": "ok", "queue": "ok"}


def test_account_answers_segment(admin_http):
    world = make_world(admin_http, TestIssuer.new(), "acme")
    r = world.billing.get(f"/api/v1/accounts/{world.account_id}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["segment"] == "self_serve"
    assert body["credit_balance"] == "0.00"
