"""An account's stored license count (`accounts.active_licenses`, read by every quote) equals
the sum over its active subscriptions after every kind of change: admin subscriptions of each
status, an upgrade applied in bulk (PostgreSQL) or through the ORM (SQLite), and "subscribe now"
reactivating an expired subscription. (The migration that fills it: test_migrations.py.)"""

from __future__ import annotations

from sqlalchemy import func, select

from tenants.models import Account, Subscription
from tests.conftest import Http, TestIssuer, make_world, service_token

PM = {"token": "pm_tok_lic", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099}


def _counts(app, account_id: str) -> tuple[int, int]:
    """(stored, summed)."""
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        stored = db.scalar(select(Account.active_licenses).where(Account.id == account_id))
        summed = db.scalar(select(func.coalesce(func.sum(Subscription.licenses), 0)).where(
            Subscription.account_id == account_id, Subscription.status == "active"))
        return stored, summed
    finally:
        db.close()


def _order(w, body: dict, key: str) -> dict:
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                       headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_the_stored_count_follows_every_change(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "counted", country="US", currency="USD",
                   plan="standard", licenses=5)
    assert _counts(any_app, w.account_id) == (5, 5)

    subs = f"/api/v1/accounts/{w.account_id}/subscriptions"
    for status, licenses in (("trial", 3), ("expired", 4), ("active", 2)):
        r = admin.post(subs, json={"product": "webinar", "plan": "lite", "licenses": licenses,
                                   "billing_period": "monthly", "status": status,
                                   "current_period_start": "2026-02-20"})
        assert r.status_code == 201, r.get_json()
    assert _counts(any_app, w.account_id) == (7, 7)

    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=PM).status_code == 200
    grown = _order(w, {"items": [{"subscription_id": w.subscription_id, "licenses": 9}]}, "grow")
    # "Subscribe now" on the expired subscription of the product: reactivated with 6 licenses.
    renewed = _order(w, {"items": [{"product": "webinar", "plan": "standard", "licenses": 6,
                                    "billing_period": "monthly"}]}, "renew")
    assert any_app.extensions["gateway.queue"].wait_idle()
    for order in (grown, renewed):
        assert w.billing.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "completed"
    assert _counts(any_app, w.account_id) == (9 + 2 + 6, 9 + 2 + 6)
