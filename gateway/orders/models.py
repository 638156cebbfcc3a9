"""The order flow's records: cart items, orders, idempotency keys, events, audit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.db import Base, Money, new_id, stamped

# An order in one of these has been placed and not yet applied, rejected or withdrawn.
OPEN_STATUSES = ("processing", "awaiting_advisor", "awaiting_acceptance")
# An open order that holds part of the account's credit balance (the partial index's predicate,
# repeated word for word by the query that uses it).
OPEN_BALANCE = ("status IN (" + ", ".join(f"'{status}'" for status in OPEN_STATUSES) + ") "
                "AND balance_applied <> 0")


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("account_id", "subscription_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "itm"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"))
    product: Mapped[str | None] = mapped_column(String(60))
    plan: Mapped[str | None] = mapped_column(String(60))
    licenses: Mapped[int | None] = mapped_column(Integer)
    billing_period: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = stamped()


class Order(Base):
    __tablename__ = "orders"
    # The account's open orders (the balance they hold) are read on every quote: by status
    # within the account, so that an account's history of completed orders costs nothing.
    # The balance open orders hold is read on every quote and order: only the few that hold
    # any, whatever the backlog of open orders (hundreds on one busy account under load).
    __table_args__ = (Index("ix_orders_account_id_status", "account_id", "status"),
                      Index("ix_orders_open_balance", "account_id",
                            postgresql_where=text(OPEN_BALANCE), sqlite_where=text(OPEN_BALANCE)))
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "ord"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(30))
    route_destination: Mapped[str] = mapped_column(String(30))
    route_reason: Mapped[str] = mapped_column(String(500))
    # The account's segment when placed: it picks the adapter that applies the order.
    segment: Mapped[str | None] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    net: Mapped[Decimal] = mapped_column(Money)
    balance_applied: Mapped[Decimal] = mapped_column(Money)
    credit_added: Mapped[Decimal] = mapped_column(Money)
    tax_treatment: Mapped[str] = mapped_column(String(20))
    tax_country: Mapped[str] = mapped_column(String(2))
    tax_rate: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    total_due: Mapped[Decimal] = mapped_column(Money)
    rates_as_of: Mapped[date] = mapped_column(Date)
    today: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    # The buyer's purchase-order number, given when accepting a portal quote.
    po_number: Mapped[str | None] = mapped_column(String(64))
    # A principal's label: kind, subject (255) and issuer URL (500).
    placed_by: Mapped[str] = mapped_column(String(800))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = stamped()
    updated_at: Mapped[datetime] = stamped(on_update=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    items: Mapped[list[OrderItem]] = relationship(
        cascade="all, delete-orphan", order_by="OrderItem.position", lazy="selectin"
    )


class OrderItem(Base):
    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # Indexed: placing an order asks whether an open one already changes the subscription.
    subscription_id: Mapped[str | None] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    # The subscription's version when priced: applying to any other version is refused.
    subscription_version: Mapped[int | None] = mapped_column(Integer)
    product: Mapped[str] = mapped_column(String(60))
    plan: Mapped[str] = mapped_column(String(60))
    licenses: Mapped[int] = mapped_column(Integer)
    licenses_before: Mapped[int] = mapped_column(Integer, default=0)
    # The terms before the change (null for a new subscription), shown to the advisor.
    plan_before: Mapped[str | None] = mapped_column(String(60))
    billing_period_before: Mapped[str | None] = mapped_column(String(10))
    billing_period: Mapped[str] = mapped_column(String(10))
    changes: Mapped[list] = mapped_column(JSON)
    route_destination: Mapped[str] = mapped_column(String(30))
    route_reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(30))
    credit: Mapped[Decimal] = mapped_column(Money)
    charge: Mapped[Decimal] = mapped_column(Money)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(400))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict | None] = mapped_column(JSON)
    # The exact JSON text of the first answer: a replay sends these bytes again.
    response_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = stamped(index=True)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(60))
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = stamped()
    # Set when the webhook fan-out pass has made the event's deliveries (gateway.webhooks).
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class AuditRecord(Base):
    __tablename__ = "audit_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[str] = mapped_column(String(40), index=True)
    actor: Mapped[str] = mapped_column(String(800))  # a principal's label, as placed_by
    action: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = stamped()
