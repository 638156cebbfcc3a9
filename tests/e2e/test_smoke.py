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


def test_timestamps_are_iso_8601_utc(admin_http):
    from datetime import datetime

    world = make_world(admin_http, TestIssuer.new(), "clock")
    user = admin_http.post(f"/api/v1/accounts/{world.account_id}/users",
                           json={"name": "U", "email": "u@x.example"}).get_json()
    events = admin_http.get("/api/v1/events").get_json()
    stamps = [user["created_at"]] + [e["created_at"] for e in events]
    for stamp in stamps:
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp).utcoffset().total_seconds() == 0
