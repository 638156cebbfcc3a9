"""The fast tier: use cases called directly with their collaborators, no Flask app or request.

The database is SQLite in memory (the models as they are); the clock, caller, adapters and
relay are fakes, so every figure below is checked against a clock we moved ourselves."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

import adapters.models  # noqa: F401  (the tables the order flow writes)
from gateway.auth.principal import Principal
from gateway.composition import Deps
from gateway.errors import GatewayError
from gateway.orders import jobs
from gateway.orders.models import AuditRecord, Event, Order
from gateway.services import cart, orders, quotes
from tenants.clock import ManualClock
from tenants.db import Base
from tenants.models import Account, Plan, Price, Product, Subscription, Tenant

NOW = datetime(2026, 3, 10, 9, 30)
BILLING = Principal("service", "https://gw.example", "erp", "erp", frozenset({"billing", "read"}))
SETTINGS = {"SELLER_COUNTRY": "IE", "IDEMPOTENCY_TTL_HOURS": 48, "IDEMPOTENCY_LEASE_SECONDS": 60}


class FakeBillingCenter:
    def __init__(self):
        self.applied = []

    def apply(self, change, db):
        self.applied.append(change)
        return {"status": "applied"}


class Relay:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


@pytest.fixture
def world():
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    clock = ManualClock(NOW)
    db = sessionmaker(engine, expire_on_commit=False, info={"clock": clock})()
    prices = {"standard": Decimal("29.00"), "business": Decimal("49.00")}
    db.add(Product(code="webinar", name="Webinar", plans=[
        Plan(code=code, name=code, rank=rank,
             prices=[Price(currency="EUR", billing_period="monthly", unit_amount=prices[code])])
        for rank, code in enumerate(prices, start=2)]))
    tenant = Tenant(name="Acme", slug="acme")
    db.add(tenant)
    db.flush()
    account = Account(tenant_id=tenant.id, name="Acme GmbH", country="DE", currency="EUR",
                      billing_channel="online", payment_terms="card", vat_number="DE136695976",
                      credit_balance=Decimal("10.00"), pm_token="pm_1", pm_brand="visa",
                      pm_last4="4242", pm_exp_month=12, pm_exp_year=2030)
    db.add(account)
    db.flush()
    sub = Subscription(tenant_id=tenant.id, account_id=account.id, product="webinar",
                       plan="standard", licenses=5, billing_period="monthly", status="active",
                       current_period_start=date(2026, 2, 20), current_period_end=date(2026, 3, 20))
    db.add(sub)
    db.commit()
    deps = Deps(db=db, clock=clock, principal=BILLING, settings=SETTINGS,
                billing_center=FakeBillingCenter(), relay=Relay())
    yield deps, account.id, sub.id
    db.close()
    engine.dispose()


UPGRADE = {"plan": "business", "licenses": 8}


def test_a_quote_is_priced_on_the_injected_clock(world):
    deps, _, sub_id = world
    q = quotes.quote(deps, sub_id, UPGRADE)
    assert [(line["type"], line["amount"]) for line in q["lines"]] == [
        ("credit_unused", "-51.79"), ("charge", "392.00")]
    assert (q["total_due"], q["proposed"]["period_start"]) == ("330.21", date(2026, 3, 10))


def test_the_same_quote_a_day_later_credits_a_day_less(world):
    deps, _, sub_id = world
    deps.clock.advance(days=1)
    q = quotes.quote(deps, sub_id, UPGRADE)
    assert q["proposed"]["period_start"] == date(2026, 3, 11)
    assert q["lines"][0]["amount"] != "-51.79"


def test_an_order_is_written_with_its_audit_and_event_at_the_clocks_time(world):
    deps, account_id, sub_id = world
    placed = orders.place(deps, account_id, {"items": [dict(UPGRADE, subscription_id=sub_id)]}, "k1")
    assert placed.status == 201 and placed.body["total_due"] == "330.21"
    order = deps.db.get(Order, placed.body["id"])
    assert (order.today, order.created_at) == (date(2026, 3, 10), NOW)
    assert deps.db.scalar(select(Event.type).where(Event.type == "order.created")) == "order.created"
    assert deps.db.scalar(select(AuditRecord.action)) == "order.placed"
    assert deps.relay.calls == 1


def test_a_replayed_key_answers_the_first_answer_and_places_nothing(world):
    deps, account_id, sub_id = world
    body = {"items": [dict(UPGRADE, subscription_id=sub_id)]}
    first = orders.place(deps, account_id, body, "k1")
    again = orders.place(deps, account_id, body, "k1")
    assert again.replay and again.body["id"] == first.body["id"]
    assert len(deps.db.scalars(select(Order)).all()) == 1


def test_a_refused_order_releases_its_key(world):
    deps, account_id, sub_id = world
    with pytest.raises(GatewayError) as refused:
        orders.place(deps, account_id, {"items": [{"subscription_id": sub_id, "licenses": 5}]}, "k")
    assert refused.value.error == "no_change"
    placed = orders.place(deps, account_id, {"items": [dict(UPGRADE, subscription_id=sub_id)]}, "k")
    assert placed.status == 201


def test_applying_goes_through_the_billing_center_and_completes_at_the_clocks_time(world):
    deps, account_id, sub_id = world
    placed = orders.place(deps, account_id, {"items": [dict(UPGRADE, subscription_id=sub_id)]}, "k")
    deps.clock.advance(minutes=5)
    order = deps.db.get(Order, placed.body["id"])
    jobs.apply(deps, order)
    deps.db.commit()
    assert [c["order_id"] for c in deps.billing_center.applied] == [order.id]
    sub = deps.db.get(Subscription, sub_id)
    assert (sub.plan, sub.licenses, sub.current_period_start) == ("business", 8, date(2026, 3, 10))
    assert order.completed_at == datetime(2026, 3, 10, 9, 35)
    assert sub.updated_at == datetime(2026, 3, 10, 9, 35)  # stamped by the session's clock
    assert deps.db.get(Account, account_id).credit_balance == Decimal("0.00")


def test_the_cart_totals_its_items(world):
    deps, account_id, sub_id = world
    item = cart.add(deps, account_id, dict(UPGRADE, subscription_id=sub_id))
    assert item["changes"] == ["plan_upgrade", "licenses_added"]
    read = cart.read(deps, account_id)
    assert read["quote"]["total_due"] == "330.21"
    cart.remove(deps, account_id, item["id"])
    assert cart.read(deps, account_id) == {"items": [], "quote": None}
