"""VAT numbers checked against a loopback VIES (the EU REST shape), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from adapters.vies import EmbeddedVies, ViesUnavailable
from adapters.vies_http import HttpVies
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.fake_vies import FakeVies

NUMBER = "DE136695976"


@pytest.fixture
def vies():
    fake = FakeVies(registered={NUMBER}).start()
    yield fake
    fake.stop()


@pytest.fixture
def gw(db_url, tmp_path, vies):
    app = build_app(db_url, tmp_path, VIES_URL=vies.url, VIES_RECHECK_SECONDS=0)
    admin = Http(app.test_client(), service_token(app))
    world = make_world(admin, TestIssuer.new(), "vat")  # a German account; the seller is in IE
    yield app, admin, world
    app.extensions["gateway.db"].dispose()


def _put(world, number=NUMBER):
    return world.billing.put(f"/api/v1/accounts/{world.account_id}/vat-number",
                             json={"vat_number": number})


def _tax(world) -> dict:
    r = world.billing.post(f"/api/v1/subscriptions/{world.subscription_id}/quotes",
                           json={"plan": "business"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["tax"], r.get_json()["requirements"]


def _recheck(app) -> int:
    from gateway.services.vat_numbers import recheck_due

    with app.app_context():
        return recheck_due()


def test_a_registered_number_is_verified_and_reverse_charged(gw, vies):
    app, admin, w = gw
    r = _put(w)
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"vat_number": NUMBER, "country": "DE", "valid": True,
                            "vat_status": "verified"}
    assert vies.asked == [{"countryCode": "DE", "vatNumber": "136695976"}]
    assert admin.get(f"/api/v1/accounts/{w.account_id}").get_json()["vat_status"] == "verified"
    tax, reqs = _tax(w)
    assert (tax["treatment"], tax["rate"], tax["vat_status"]) == ("reverse_charge", "0.00", "verified")
    assert {"type": "vat_number", "status": "satisfied"} in reqs


def test_a_number_the_registry_does_not_know_is_refused_and_nothing_is_stored(gw, vies):
    app, admin, w = gw
    r = _put(w, "DE129273398")  # passes the offline check, not in the registry
    assert r.status_code == 422
    body = r.get_json()
    assert (body["error"], body["reason"]) == ("invalid_vat_number", "not_registered")
    assert body["errors"]["vat_number"]
    account = admin.get(f"/api/v1/accounts/{w.account_id}").get_json()
    assert account["vat_number"] is None and account["vat_status"] is None
    tax, reqs = _tax(w)
    assert (tax["treatment"], tax["rate"], tax["vat_status"]) == ("standard", "0.19", None)
    assert {"type": "vat_number", "status": "outstanding"} in reqs


def test_an_account_created_with_an_unregistered_number_is_refused(gw):
    app, admin, w = gw
    r = admin.post(f"/api/v1/tenants/{w.tenant_id}/accounts", json={
        "name": "Unknown GmbH", "country": "DE", "currency": "EUR", "billing_channel": "online",
        "payment_terms": "card", "vat_number": "DE129273398"})
    assert r.status_code == 422 and r.get_json()["reason"] == "not_registered"
    assert len(admin.get(f"/api/v1/tenants/{w.tenant_id}/accounts").get_json()) == 1


@pytest.mark.parametrize("outage", ["down", "ms_unavailable"])
def test_registry_down_stores_unverified_then_the_recheck_verifies(gw, vies, outage):
    app, admin, w = gw
    vies.mode = outage
    r = _put(w)
    assert r.status_code == 200 and r.get_json()["vat_status"] == "unverified"
    tax, _ = _tax(w)
    assert (tax["treatment"], tax["vat_status"]) == ("reverse_charge", "unverified")
    assert _recheck(app) == 0  # still down: kept, asked again later
    assert admin.get(f"/api/v1/accounts/{w.account_id}").get_json()["vat_status"] == "unverified"
    vies.mode = "up"
    assert _recheck(app) == 1
    assert admin.get(f"/api/v1/accounts/{w.account_id}").get_json()["vat_status"] == "verified"
    assert _tax(w)[0]["vat_status"] == "verified"


def test_registry_down_then_not_registered_invalidates_with_an_event(gw, vies):
    app, admin, w = gw
    vies.mode = "down"
    assert _put(w).get_json()["vat_status"] == "unverified"
    vies.mode, vies.registered = "up", set()
    assert _recheck(app) == 1
    account = admin.get(f"/api/v1/accounts/{w.account_id}").get_json()
    assert (account["vat_number"], account["vat_status"]) == (NUMBER, "invalid")
    events = admin.get("/api/v1/events").get_json()
    assert events[-1]["type"] == "account.vat_number_invalidated"
    assert events[-1]["data"] == {"account_id": w.account_id, "vat_number": NUMBER, "country": "DE"}
    tax, reqs = _tax(w)  # falls back to the buyer's country rate
    assert (tax["treatment"], tax["rate"], tax["vat_status"]) == ("standard", "0.19", "invalid")
    assert {"type": "vat_number", "status": "outstanding"} in reqs


def test_the_recheck_backs_off_while_the_registry_stays_down(gw, vies):
    app, admin, w = gw
    app.config["VIES_RECHECK_SECONDS"] = 3600
    vies.mode = "down"
    _put(w)
    asked = len(vies.asked)
    assert _recheck(app) == 0 and len(vies.asked) == asked  # not due before its time


def test_with_vies_off_a_number_is_valid_after_the_offline_check(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "novies")
    r = _put(w)
    assert r.status_code == 200 and r.get_json()["vat_status"] == "valid"
    tax, _ = _tax(w)
    assert (tax["treatment"], tax["vat_status"]) == ("reverse_charge", "valid")


def test_the_http_adapter_sends_the_vat_prefix_and_reads_the_verdict(vies):
    client = HttpVies.from_config({"VIES_URL": vies.url, "VIES_TIMEOUT": 2})
    vies.registered = {"EL094259216"}
    assert client.check("EL094259216") is True
    assert vies.asked[-1] == {"countryCode": "EL", "vatNumber": "094259216"}
    assert client.check("DE136695976") is False
    vies.mode = "down"
    with pytest.raises(ViesUnavailable):
        client.check("DE136695976")


def test_the_embedded_registry_stands_in_for_demos():
    registry = EmbeddedVies(unregistered={"DE129273398"})
    assert registry.check(NUMBER) is True and registry.check("DE129273398") is False
    registry.down = True
    with pytest.raises(ViesUnavailable):
        registry.check(NUMBER)
