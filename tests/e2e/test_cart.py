"""The cart, "subscribe now" and the refusals of api.md "Modifying a subscription", over HTTP.

Figures are worked by hand in the comments (design.md §3.2: credit and charge per item; net,
balance, tax and total once on the sum).
"""

from __future__ import annotations

from datetime import date

import pytest

from routing.periods import add_period
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

PM = {"token": "pm_tok_cart", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099}


@pytest.fixture
def frozen(sqlite_url, tmp_path):
    app = build_app(sqlite_url, tmp_path, FROZEN_TODAY="2026-03-10")
    yield app, Http(app.test_client(), service_token(app))
    app.extensions["gateway.db"].dispose()


def _subscription(admin, account_id, **terms) -> str:
    body = {"product": "webinar", "status": "active", **terms}
    r = admin.post(f"/api/v1/accounts/{account_id}/subscriptions", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _order(http, account_id, body, key="k1"):
    headers = {"Idempotency-Key": key} if key else {}
    return http.post(f"/api/v1/accounts/{account_id}/orders", json=body, headers=headers)


def _mail_about(app, order_id) -> list[str] | None:
    """Messages in MAIL_DIR naming the order; None while no notifier is wired."""
    if app.extensions.get("gateway.notifier") is None:
        return None
    from pathlib import Path

    files = [p for p in Path(app.config["MAIL_DIR"]).rglob("*") if p.is_file()]
    return [t for t in (p.read_text(errors="replace") for p in files) if order_id in t]


def test_cart_prices_two_subscriptions_once_on_the_sum_and_places_them_as_one_order(frozen):
    app, admin = frozen
    # Irish account (seller IE: standard 23%), valid VAT number and a card: nothing outstanding.
    w = make_world(admin, TestIssuer.new(), "cart", country="IE", vat_number="IE6433435F",
                   balance="20.00", plan="standard", licenses=5, start="2026-02-20")
    sub_a = w.subscription_id  # standard x5 monthly, [2026-02-20, 2026-03-20)
    sub_b = _subscription(admin, w.account_id, plan="lite", licenses=3, billing_period="monthly",
                          current_period_start="2026-03-01")  # [2026-03-01, 2026-04-01)
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=PM).status_code == 200
    items_url = f"/api/v1/accounts/{w.account_id}/cart/items"
    cart_url = f"/api/v1/accounts/{w.account_id}/cart"

    assert w.billing.get(cart_url).get_json() == {"items": [], "quote": None}
    r = w.billing.post(items_url, json={"subscription_id": sub_a, "plan": "business", "licenses": 8})
    assert r.status_code == 201, r.get_json()
    item_a = r.get_json()
    assert item_a["changes"] == ["plan_upgrade", "licenses_added"]
    assert item_a["route"]["destination"] == "billing_center"
    # A: credit 29 x 5 x 10/28 = 51.7857 -> 51.79; charge 49 x 8 = 392.00
    assert [(x["type"], x["amount"]) for x in item_a["lines"]] == [
        ("credit_unused", "-51.79"), ("charge", "392.00")]

    again = w.billing.post(items_url, json={"subscription_id": sub_a, "licenses": 9})
    assert again.status_code == 409 and again.get_json()["error"] == "already_in_cart"

    # With A in the cart, a quote for B says to add it to the cart, and a direct order is refused.
    q = w.billing.post(f"/api/v1/subscriptions/{sub_b}/quotes", json={"licenses": 4})
    assert q.status_code == 200 and q.get_json()["next_action"] == "add_to_cart"
    direct = _order(w.billing, w.account_id, {"items": [{"subscription_id": sub_b, "licenses": 4}]},
                    key="direct")
    assert direct.status_code == 409
    assert (direct.get_json()["error"], direct.get_json()["next_action"]) == (
        "cart_not_empty", "add_to_cart")

    r = w.billing.post(items_url, json={"subscription_id": sub_b, "licenses": 5})
    assert r.status_code == 201, r.get_json()
    item_b = r.get_json()["id"]
    r = w.billing.patch(f"{items_url}/{item_b}", json={"licenses": 4})
    assert r.status_code == 200, r.get_json()
    # B: credit 19 x 3 x 22/31 = 40.4516 -> 40.45; charge 19 x 4 = 76.00
    assert [x["amount"] for x in r.get_json()["lines"]] == ["-40.45", "76.00"]
    assert r.get_json()["licenses"] == 4 and r.get_json()["changes"] == ["licenses_added"]

    cart = w.billing.get(cart_url).get_json()
    assert [i["subscription_id"] for i in cart["items"]] == [sub_a, sub_b]
    t = cart["quote"]
    # net = (392.00 + 76.00) - (51.79 + 40.45) = 375.76; balance 20.00 -> taxable 355.76;
    # tax = 355.76 x 0.23 = 81.8248 -> 81.82 (per item it would be 73.65 + 8.18 = 81.83)
    assert (t["currency"], t["net"], t["balance_applied"], t["credit_added"]) == (
        "EUR", "375.76", "20.00", "0.00")
    assert (t["tax"]["treatment"], t["tax"]["rate"], t["tax"]["amount"]) == ("standard", "0.23", "81.82")
    assert t["total_due"] == "437.58"
    assert t["requirements"] == [{"type": "payment_method", "status": "satisfied"},
                                 {"type": "vat_number", "status": "satisfied"}]
    assert t["route"]["destination"] == "billing_center" and t["next_action"] == "place_order"

    # Remove B: A alone, 340.21 - 20.00 = 320.21; tax 73.6483 -> 73.65; total 393.86
    assert w.billing.delete(f"{items_url}/{item_b}").status_code == 204
    t = w.billing.get(cart_url).get_json()["quote"]
    assert (t["net"], t["balance_applied"], t["tax"]["amount"], t["total_due"]) == (
        "340.21", "20.00", "73.65", "393.86")
    assert w.billing.delete(f"{items_url}/{item_b}").status_code == 404
    assert w.billing.post(items_url, json={"subscription_id": sub_b, "licenses": 4}).status_code == 201

    # A member may read but not fill the cart.
    denied = w.member.post(items_url, json={"subscription_id": sub_b, "licenses": 6})
    assert denied.status_code == 403 and denied.get_json()["error"] == "not_billing_contact"

    r = _order(w.billing, w.account_id, {"cart": True}, key="cart-1")
    assert r.status_code == 201, r.get_json()
    order = r.get_json()
    assert [(i["subscription_id"], i["changes"]) for i in order["items"]] == [
        (sub_a, ["plan_upgrade", "licenses_added"]), (sub_b, ["licenses_added"])]
    assert [(i["credit"], i["charge"]) for i in order["items"]] == [
        ("-51.79", "392.00"), ("-40.45", "76.00")]
    assert (order["net"], order["balance_applied"], order["tax"]["amount"], order["total_due"]) == (
        "375.76", "20.00", "81.82", "437.58")
    assert w.billing.get(cart_url).get_json() == {"items": [], "quote": None}
    empty = _order(w.billing, w.account_id, {"cart": True}, key="cart-2")
    assert empty.status_code == 422 and empty.get_json()["error"] == "cart_empty"

    assert app.extensions["gateway.queue"].wait_idle()
    done = w.billing.get(f"/api/v1/orders/{order['id']}").get_json()
    assert done["status"] == "completed"
    assert done["license_assignment"] == [
        {"subscription_id": s, "unassigned": n, "assign_url": f"/api/v1/subscriptions/{s}/licenses"}
        for s, n in ((sub_a, 8), (sub_b, 4))]
    for sub_id, terms in ((sub_a, ("business", 8)), (sub_b, ("lite", 4))):
        sub = w.billing.get(f"/api/v1/subscriptions/{sub_id}").get_json()
        assert (sub["plan"], sub["licenses"]) == terms
        assert (sub["current_period_start"], sub["current_period_end"]) == ("2026-03-10", "2026-04-10")
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}").get_json()["credit_balance"] == "0.00"
    mail = _mail_about(app, order["id"])
    if mail is not None:  # adapters/notifications.py wired: a confirmation was written
        assert mail and any("437.58" in m for m in mail)


def test_cart_with_a_new_subscription_and_a_downgrade_goes_to_an_advisor(app):
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "mixed", country="US", currency="USD", plan="business",
                   licenses=2, start="2020-01-01")  # long over: no credit whatever today is
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=PM).status_code == 200
    items_url = f"/api/v1/accounts/{w.account_id}/cart/items"
    new = w.billing.post(items_url, json={"product": "webinar", "plan": "lite", "licenses": 2,
                                          "billing_period": "monthly"})
    assert new.status_code == 201, new.get_json()
    assert new.get_json()["changes"] == ["new_subscription"]
    assert new.get_json()["route"]["destination"] == "billing_center"
    down = w.billing.post(items_url, json={"subscription_id": w.subscription_id, "plan": "standard"})
    assert down.status_code == 201 and down.get_json()["route"]["destination"] == "advisor_queue"
    quote = w.billing.get(f"/api/v1/accounts/{w.account_id}/cart").get_json()["quote"]
    # the whole cart goes where its most restrictive item goes, and says so as the quote would
    assert quote["route"]["destination"] == "advisor_queue"
    assert quote["next_action"] == "contact_advisor"
    assert quote["net"] == "96.00"  # 19 x 2 + 29 x 2, nothing left of the old period to credit
    r = _order(w.billing, w.account_id, {"cart": True})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "awaiting_advisor"
    types = [e["type"] for e in admin.get("/api/v1/events").get_json()]
    assert types == ["order.created", "advisor_case.opened"]


def test_subscribe_now_reactivates_the_expired_subscription(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "lapsed", country="US", currency="USD", plan="lite",
                   licenses=2, start="2025-11-01", status="expired")
    q = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes", json={"licenses": 3})
    assert q.status_code == 409
    assert (q.get_json()["error"], q.get_json()["next_action"]) == ("subscription_expired", "subscribe_now")
    direct = _order(w.billing, w.account_id,
                    {"items": [{"subscription_id": w.subscription_id, "licenses": 3}]}, key="old")
    assert direct.status_code == 409 and direct.get_json()["error"] == "subscription_expired"

    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=PM).status_code == 200
    body = {"items": [{"product": "webinar", "plan": "standard", "licenses": 3, "billing_period": "monthly"}]}
    r = _order(w.billing, w.account_id, body, key="again")
    assert r.status_code == 201, r.get_json()
    order = r.get_json()
    assert order["items"][0]["changes"] == ["new_subscription"]
    assert (order["items"][0]["credit"], order["items"][0]["charge"]) == ("0.00", "87.00")  # 29 x 3
    assert (order["net"], order["tax"]["treatment"], order["total_due"]) == (
        "87.00", "not_applicable", "87.00")

    assert any_app.extensions["gateway.queue"].wait_idle()
    done = w.billing.get(f"/api/v1/orders/{order['id']}").get_json()
    assert done["status"] == "completed"
    assert done["items"][0]["subscription_id"] == w.subscription_id
    today = any_app.extensions["gateway.clock"].today()
    subs = w.billing.get(f"/api/v1/accounts/{w.account_id}/subscriptions").get_json()
    assert [s["id"] for s in subs] == [w.subscription_id]  # reactivated, not a second one
    sub = subs[0]
    assert (sub["status"], sub["plan"], sub["licenses"], sub["billing_period"]) == (
        "active", "standard", 3, "monthly")
    assert (sub["current_period_start"], sub["current_period_end"]) == (
        today.isoformat(), add_period(today, "monthly").isoformat())
    assert date.fromisoformat(sub["current_period_start"]) == today


def test_refusals_of_a_change(app):
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "refuse", country="US", currency="USD",
                   plan="standard", licenses=5, start="2026-02-20")
    quote_url = f"/api/v1/subscriptions/{w.subscription_id}/quotes"

    def refused(body, http=None):
        r = (http or w.billing).post(quote_url, json=body)
        return r.status_code, r.get_json()["error"]

    assert refused({"plan": "standard", "licenses": 5}) == (422, "no_change")
    assert refused({"plan": "platinum"}) == (422, "unknown_plan")
    assert refused({"billing_period": "annual"}) == (422, "price_unavailable")  # no USD annual standard

    users = [admin.post(f"/api/v1/accounts/{w.account_id}/users",
                        json={"name": f"u{n}", "email": f"u{n}@refuse.example"}).get_json()["id"]
             for n in range(3)]
    for user_id in users:
        r = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/licenses", json={"user_id": user_id})
        assert r.status_code == 201, r.get_json()
    assert refused({"licenses": 2}) == (422, "licenses_in_use")
    assert w.billing.post(quote_url, json={"licenses": 3}).get_json()["changes"] == ["licenses_removed"]

    r = w.member.post(quote_url, json={"licenses": 6})
    assert r.status_code == 403 and r.get_json()["error"] == "not_billing_contact"
    assert r.get_json()["billing_contacts"] == [{"name": "billing@refuse",
                                                "email": "billing.refuse@x.example"}]

    body = {"items": [{"subscription_id": w.subscription_id, "licenses": 6}]}
    r = _order(w.billing, w.account_id, body, key=None)
    assert r.status_code == 400 and r.get_json()["error"] == "idempotency_key_required"
    r = _order(w.member, w.account_id, body, key="member")
    assert r.status_code == 403 and r.get_json()["error"] == "not_billing_contact"
