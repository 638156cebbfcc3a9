"""Records of the outside world's embedded stand-ins, the outbox and the advisors' queue."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenants.db import Base, Money, new_id, stamped


class OutboxMessage(Base):
    """Written in the order's transaction; the relay moves it to the job queue."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = stamped()
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class AdvisorCase(Base):
    __tablename__ = "advisor_cases"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "case"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="open")
    assigned_advisor_id: Mapped[str | None] = mapped_column(ForeignKey("advisors.id"))
    pool: Mapped[str] = mapped_column(String(100))
    claimed_by: Mapped[str | None] = mapped_column(ForeignKey("advisors.id"))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    decision: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = stamped()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class CaseEntry(Base):
    """One line of a case's history: opened, claimed, released, noted, decided, withdrawn."""

    __tablename__ = "advisor_case_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("advisor_cases.id"), index=True)
    at: Mapped[datetime] = stamped()
    actor: Mapped[str] = mapped_column(String(800))  # a principal's label (subject + issuer URL)
    action: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)


class PortalQuote(Base):
    """A price quote in the embedded corporate billing portal."""

    __tablename__ = "portal_quotes"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=partial(new_id, "pq"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    # The quote's id in the external portal, once sent there (HTTP portal only).
    external_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="open")
    items: Mapped[list] = mapped_column(JSON)
    total_due: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = stamped()


class LedgerEntry(Base):
    """The embedded billing center's own book: one row per applied order, so a retry is a no-op."""

    __tablename__ = "billing_center_ledger"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    system: Mapped[str] = mapped_column(String(30))
    # The corporate portal keeps the buyer's purchase-order number with the change.
    po_number: Mapped[str | None] = mapped_column(String(64))
    applied_at: Mapped[datetime] = stamped()
