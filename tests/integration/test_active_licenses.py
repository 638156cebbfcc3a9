"""An account's stored license count (`accounts.active_licenses`, read by every quote) equals
the sum over its active subscriptions after every kind of change: admin subscriptions of each
status, an upgrade applied in bulk (PostgreSQL) or through the ORM (SQLite), "subscribe now"
reactivating an expired subscription, and a migration of data written before the column."""

from __future__ import annotations

from sqlalchemy import func, select, text

from gateway.migrate import upgrade
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


def test_the_migration_counts_what_was_there(db_url):
    """Data written before revision 0009: the column starts at the sum, not at zero."""
    upgrade(db_url, "0006")
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    with engine.begin() as c:
        c.execute(text("INSERT INTO tenants (id, name, slug, require_vat_number, created_at) "
                       "VALUES ('ten_1', 'T', 't', false, '2026-01-01')"))
        c.execute(text("INSERT INTO accounts (id, tenant_id, name, country, currency, "
                       "billing_channel, payment_terms, credit_balance, vat_check_attempts, "
                       "created_at) VALUES ('acc_1', 'ten_1', 'A', 'US', 'USD', 'online', "
                       "'card', '0', 0, '2026-01-01')"))
        c.execute(text("INSERT INTO products (code, name) VALUES ('webinar', 'W')"))
        for n, (status, licenses) in enumerate((("active", 4), ("active", 3), ("expired", 50))):
            c.execute(text(
                "INSERT INTO subscriptions (id, tenant_id, account_id, product, plan, licenses, "
                "billing_period, status, current_period_start, current_period_end, version, "
                "created_at, updated_at) VALUES (:id, 'ten_1', 'acc_1', 'webinar', 'lite', :n, "
                "'monthly', :status, '2026-01-01', '2026-02-01', 1, '2026-01-01', '2026-01-01')"),
                {"id": f"sub_{n}", "n": licenses, "status": status})
    upgrade(db_url)
    with engine.connect() as c:
        assert c.execute(text("SELECT active_licenses FROM accounts WHERE id = 'acc_1'")).scalar() == 7
    engine.dispose()
