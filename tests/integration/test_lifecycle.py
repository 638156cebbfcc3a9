"""The order lifecycle's transition table, walked whole on SQLite and PostgreSQL: every allowed
transition lands where the table says, every other one is refused with its code and changes
nothing; and no module but the lifecycle moves a status."""

from __future__ import annotations

import ast
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.billing_center import EmbeddedBillingCenter
from adapters.models import AdvisorCase, CaseEntry, OutboxMessage, PortalQuote
from gateway.errors import GatewayError
from gateway.orders import lifecycle
from gateway.orders.models import AuditRecord, Event, Order, OrderItem
from tenants.catalog import Catalog
from tenants.db import utcnow
from tenants.models import Account, Subscription
from tests import source_tree
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = {
    "apply": lambda db, o: lifecycle.apply(db, o, actor="t", now=utcnow(), adapter=EmbeddedBillingCenter()),
    "reject": lambda db, o: lifecycle.reject(db, o, "no", actor="t", now=utcnow()),
    "withdraw": lambda db, o: lifecycle.withdraw(db, o, actor="t", now=utcnow()),
    "fail": lambda db, o: lifecycle.fail(db, o, "adapter_failed", now=utcnow()),
}


def _counts(db, order):
    return tuple(db.scalar(select(func.count()).select_from(model)) for model in (
        Event, AuditRecord, OutboxMessage, AdvisorCase, CaseEntry, PortalQuote)) + (
        db.get(Account, order.account_id).credit_balance,
        db.get(Subscription, order.items[0].subscription_id).version)


@pytest.fixture
def placed(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "walk", country="US", currency="USD", plan="business",
                   licenses=2, start="2026-01-01")
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1,
        "exp_year": 2099}).status_code == 200
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": "w"},
                       json={"items": [{"subscription_id": w.subscription_id, "plan": "lite"}]})
    assert r.status_code == 201 and r.get_json()["status"] == "awaiting_advisor", r.get_json()
    return any_app, r.get_json()["id"]


def test_the_table_names_every_status():
    for allowed, target, code in lifecycle.TRANSITIONS.values():
        assert allowed <= set(lifecycle.STATUSES) and target in lifecycle.STATUSES and code
    assert set(lifecycle.PLACED.values()) <= set(lifecycle.STATUSES)


def test_walk_the_transition_table(placed):
    app, order_id = placed
    walked = 0
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        try:
            for status in lifecycle.STATUSES:
                for action, (allowed, target, code) in lifecycle.TRANSITIONS.items():
                    order = db.get(Order, order_id, populate_existing=True)
                    order.status = status  # the starting point: set by the test, then flushed
                    db.flush()
                    before = _counts(db, order)
                    if status in allowed:
                        ACTIONS[action](db, order)
                        db.flush()
                        assert order.status == target, (status, action)
                        assert all(i.status == target for i in order.items)
                        assert _counts(db, order) != before  # an event, audit record or message
                    else:
                        with pytest.raises(GatewayError) as refused:
                            ACTIONS[action](db, order)
                        assert (refused.value.status, refused.value.error) == (409, code), (status, action)
                        assert not db.new and not db.dirty and not db.deleted, (status, action)
                        assert order.status == status and _counts(db, order) == before
                    db.rollback()
                    walked += 1
        finally:
            db.close()
    assert walked == len(lifecycle.STATUSES) * len(lifecycle.TRANSITIONS)


def _status_assignments(path: Path) -> list[int]:
    tree = source_tree.tree(path)
    return [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            for t in (target.elts if isinstance(target, ast.Tuple) else [target])
            if isinstance(t, ast.Attribute) and t.attr == "status"
            and not (isinstance(t.value, ast.Name) and t.value.id == "self")]


def test_only_the_lifecycle_module_moves_a_status():
    moved = {str(p.relative_to(ROOT)): lines for pkg in ("gateway", "adapters")
             for p in sorted((ROOT / pkg).rglob("*.py")) if (lines := _status_assignments(p))}
    # Webhook deliveries have a status of their own (pending, succeeded, failed): not an order's.
    own = {"gateway/webhooks/delivery.py", "gateway/webhooks/endpoints.py"}
    assert set(moved) - own == {"gateway/orders/lifecycle.py"}, moved


def test_recipients_are_read_once_per_account_until_a_contact_changes(placed):
    from sqlalchemy import event

    from gateway.orders import mail
    from tenants.models import Contact, Membership

    app, order_id = placed
    cache, engine = app.extensions["gateway.cache"], app.extensions["gateway.db"].engine
    statements, here = [], threading.get_ident()

    def count(conn, cursor, statement, *args):
        if threading.get_ident() == here:  # not the queue's thread, finishing the order
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        try:
            order = db.get(Order, order_id)
            cache.invalidate()  # the order's own mails were sent by this process already
            cache.refresh(db)
            statements.clear()
            first = mail.recipients(db, order, cache)
            assert len(statements) == 1 and [r.email for r in first] == ["billing.walk@x.example"]
            assert mail.recipients(db, order, cache) == first and len(statements) == 1
            contact = db.scalar(select(Contact).join(Membership, Membership.contact_id == Contact.id)
                                .where(Membership.account_id == order.account_id))
            contact.locale = "fr" if first[0].locale != "fr" else "en"
            db.commit()  # a watched table changed: the cache forgets what it held
            order = db.get(Order, order_id)
            assert [r.locale for r in mail.recipients(db, order, cache)] == [contact.locale]
        finally:
            event.remove(engine, "before_cursor_execute", count)
            db.rollback()
            db.close()


def test_every_step_renders_in_every_language(placed):
    from gateway.orders import mail
    from tenants.models import Contact, Membership

    app, order_id = placed
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        try:
            order = db.get(Order, order_id)
            billing = db.scalars(select(Contact).join(Membership, Membership.contact_id == Contact.id)
                                 .where(Membership.account_id == order.account_id)).all()
            order.note = "Une note"
            names = {"catalog": lambda product: Catalog.load(db, product)}
            subjects = set()
            for locale in mail.LOCALES:
                for contact in billing:
                    contact.locale = locale
                db.flush()
                for step in mail.STEPS:
                    sent = mail.order_messages(db, order, step, now=utcnow(), **names)
                    assert [to for to, _, _ in sent] == ["billing.walk@x.example"]
                    (_, subject, body), = sent
                    assert order.id in subject + body and "Webinar" in body and "Lite" in body
                    assert "{{" not in body and "-0.00" not in body
                    subjects.add(subject)
            assert len(subjects) == len(mail.LOCALES) * len(mail.STEPS)
            with pytest.raises(ValueError):
                mail.order_messages(db, order, "nonsense", now=utcnow(), **names)
        finally:
            db.rollback()
            db.close()


def test_an_apply_records_its_events_in_the_order_they_happened(any_app):
    """Webhooks deliver events in id order: the bulk apply (PostgreSQL, one statement of CTEs,
    which PostgreSQL runs in no set order) must still number them as they happened."""
    admin = Http(any_app.test_client(), service_token(any_app))
    w = make_world(admin, TestIssuer.new(), "ordered", country="US", currency="USD",
                   licenses=2, start="2026-01-01")
    r = admin.post(f"/api/v1/accounts/{w.account_id}/subscriptions", json={
        "product": "webinar", "plan": "lite", "licenses": 3, "billing_period": "monthly",
        "status": "active", "current_period_start": "2026-01-01"})
    second = r.get_json()["id"]
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1,
        "exp_year": 2099}).status_code == 200
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": "o"},
                       json={"items": [{"subscription_id": second, "licenses": 5},
                                       {"subscription_id": w.subscription_id, "licenses": 4}]})
    assert r.status_code == 201, r.get_json()
    assert any_app.extensions["gateway.queue"].wait_idle()
    db = any_app.extensions["gateway.db"].sessionmaker()
    try:
        events = db.scalars(select(Event).where(Event.tenant_id == w.tenant_id)
                            .order_by(Event.id)).all()
        assert [(e.type, e.data.get("subscription_id")) for e in events] == [
            ("order.created", None), ("subscription.updated", second),
            ("subscription.updated", w.subscription_id), ("order.completed", None)]
    finally:
        db.close()


def _twin(order_id: str, account: Account, now) -> Order:
    order = Order(id=order_id, tenant_id=account.tenant_id, account_id=account.id,
                  status="processing", route_destination="billing_center", route_reason="r",
                  segment="self_serve", currency="USD", net=Decimal("10.5"),
                  balance_applied=Decimal(0), credit_added=Decimal(0), tax_treatment="none",
                  tax_country="US", tax_rate=Decimal(0), tax_amount=Decimal(0),
                  total_due=Decimal("10.5"), rates_as_of=now.date(), today=now.date(),
                  placed_by="contact|x", idempotency_key=order_id, created_at=now, updated_at=now)
    for k in range(2):
        order.items.append(OrderItem(
            position=k, subscription_id=None, subscription_version=None, product="webinar",
            plan="lite", licenses=3 + k, licenses_before=0, billing_period="monthly",
            changes=["subscribe"], route_destination="billing_center", route_reason="r",
            status="processing", credit=Decimal(0), charge=Decimal("5.25"),
            period_start=now.date(), period_end=now.date()))
    return order


def test_placing_in_one_statement_writes_what_placing_through_the_session_writes(postgres_url, tmp_path):
    """The hot path's statement (PostgreSQL) and the session's flush leave the same rows."""
    app = build_app(postgres_url, tmp_path)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "twins", country="US", currency="USD")
    now = utcnow().replace(microsecond=0)
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        account = db.get(Account, w.account_id)
        flushed = _twin("ord_flushed", account, now)
        db.add(flushed)
        db.flush()
        lifecycle.place(db, flushed, actor="contact|x", now=now, portal_remote=False)
        lifecycle.place_at_once(db, _twin("ord_at_once", account, now), actor="contact|x", now=now)
        db.commit()
        db.expire_all()  # read back what the database holds, not the session's copies

        def written(order_id):
            def rows(model, where, by=None):
                # The session stamps its rows' created_at itself, to the microsecond.
                skip = {"id", "order_id"} if model is Order else {"id", "order_id", "created_at"}
                return [{c: getattr(r, c) for c in model.__table__.columns.keys() if c not in skip}
                        for r in db.scalars(select(model).where(where).order_by(by or model.id))]

            shown = [rows(Order, Order.id == order_id),
                     rows(OrderItem, OrderItem.order_id == order_id, OrderItem.position),
                     rows(Event, Event.data["order_id"].as_string() == order_id),
                     rows(AuditRecord, AuditRecord.data["order_id"].as_string() == order_id),
                     rows(OutboxMessage, OutboxMessage.payload["args"][0].as_string() == order_id)]
            return repr(shown).replace(order_id, "ORDER")

        assert written("ord_at_once") == written("ord_flushed")
        assert "order.created" in written("ord_at_once") and "process_order" in written("ord_at_once")
    finally:
        db.close()
        app.extensions["gateway.db"].dispose()
