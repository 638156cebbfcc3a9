"""Who: tenants, issuers, accounts, contacts, users, advisors, the catalog, subscriptions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tenants.db import Base, Money, new_id, stamped


def _id(prefix):
    return mapped_column(String(40), primary_key=True, default=partial(new_id, prefix))


class Issuer(Base):
    __tablename__ = "issuers"
    id: Mapped[str] = _id("iss")
    url: Mapped[str] = mapped_column(String(500), unique=True)
    audience: Mapped[str] = mapped_column(String(500))
    jwks_uri: Mapped[str | None] = mapped_column(String(1000))
    jwks: Mapped[dict | None] = mapped_column(JSON)
    # RFC 9068 wants typ "at+jwt"; some IdPs still send "JWT" and must be let in explicitly.
    allow_jwt_typ: Mapped[bool] = mapped_column(Boolean, default=False)
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # The gateway's own OpenID Connect client at this issuer, for people signing in to pages;
    # the secret is kept readable (the gateway presents it) but never answered by the API.
    web_client_id: Mapped[str | None] = mapped_column(String(200))
    web_client_secret: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = stamped()

    @property
    def web_client(self) -> dict | None:
        if not self.web_client_id:
            return None
        return {"client_id": self.web_client_id, "client_secret": self.web_client_secret}


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = _id("ten")
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    enterprise_license_threshold: Mapped[int | None] = mapped_column(Integer)
    segment: Mapped[str | None] = mapped_column(String(20))
    require_vat_number: Mapped[bool] = mapped_column(Boolean, default=True)
    advisor_rules: Mapped[list | None] = mapped_column(JSON)
    case_due_hours: Mapped[int | None] = mapped_column(Integer)
    require_po_number: Mapped[bool] = mapped_column(Boolean, default=False)
    # The language of contacts who have not chosen one (notifications).
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = stamped()
    issuers: Mapped[list[Issuer]] = relationship(secondary="tenant_issuers", lazy="selectin")


class TenantIssuer(Base):
    __tablename__ = "tenant_issuers"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.id"), primary_key=True)


class Advisor(Base):
    __tablename__ = "advisors"
    __table_args__ = (UniqueConstraint("issuer_id", "subject"),)
    id: Mapped[str] = _id("adv")
    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.id"))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    pool: Mapped[str] = mapped_column(String(100), default="corporate-account-services")
    created_at: Mapped[datetime] = stamped()


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = _id("acc")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    billing_channel: Mapped[str] = mapped_column(String(20))
    payment_terms: Mapped[str] = mapped_column(String(20))
    vat_number: Mapped[str | None] = mapped_column(String(40))
    # design.md §3.9: valid (offline check, VIES off) | verified | unverified | invalid.
    vat_status: Mapped[str | None] = mapped_column(String(20))
    # An unverified number is checked again at this time (backoff while the registry is down).
    vat_next_check_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    vat_check_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    credit_balance: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    # The licenses of the account's active subscriptions, summed: classification reads it on
    # every quote, and summing thousands of subscriptions there would cost per subscription.
    # Kept by tenants.active_licenses (ORM flushes) and the bulk apply (its own delta).
    active_licenses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    advisor_id: Mapped[str | None] = mapped_column(ForeignKey("advisors.id"))
    # A PSP token and what a person needs to recognise the card; never the card number.
    pm_token: Mapped[str | None] = mapped_column(String(200))
    pm_brand: Mapped[str | None] = mapped_column(String(40))
    pm_last4: Mapped[str | None] = mapped_column(String(4))
    pm_exp_month: Mapped[int | None] = mapped_column(Integer)
    pm_exp_year: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = stamped()


class Contact(Base):
    __tablename__ = "contacts"
    # A token names an issuer and a subject, not a tenant: found by those two, whatever the
    # number of tenants that trust the issuer.
    __table_args__ = (UniqueConstraint("tenant_id", "issuer_id", "subject"),
                      Index("ix_contacts_issuer_id_subject", "issuer_id", "subject"))
    id: Mapped[str] = _id("con")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("issuers.id"))
    subject: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    # None: the tenant's default language.
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = stamped()


class Membership(Base):
    __tablename__ = "memberships"
    # An account's contacts (who is told about its orders), whatever the number of accounts.
    __table_args__ = (Index("ix_memberships_account_id", "account_id"),)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    roles: Mapped[list] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = _id("usr")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = stamped()


class Product(Base):
    __tablename__ = "products"
    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plans: Mapped[list[Plan]] = relationship(
        cascade="all, delete-orphan", order_by="Plan.rank", lazy="selectin"
    )


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("product_code", "code"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(Integer)
    prices: Mapped[list[Price]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class Price(Base):
    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("plan_id", "currency", "billing_period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    currency: Mapped[str] = mapped_column(String(3))
    billing_period: Mapped[str] = mapped_column(String(10))
    unit_amount: Mapped[Decimal] = mapped_column(Money)


class Subscription(Base):
    __tablename__ = "subscriptions"
    id: Mapped[str] = _id("sub")
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    product: Mapped[str] = mapped_column(ForeignKey("products.code"))
    plan: Mapped[str] = mapped_column(String(60))
    licenses: Mapped[int] = mapped_column(Integer)
    billing_period: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    current_period_start: Mapped[date] = mapped_column(Date)
    current_period_end: Mapped[date] = mapped_column(Date)
    # Bumped on every change: a second order priced against an older version must lose.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = stamped()
    updated_at: Mapped[datetime] = stamped(on_update=True)


class LicenseAssignment(Base):
    __tablename__ = "license_assignments"
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    assigned_at: Mapped[datetime] = stamped()


class ServiceClient(Base):
    """An internal system that gets service tokens by client credentials."""

    __tablename__ = "service_clients"
    client_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = stamped()


class CacheVersion(Base):
    """Bumped in the transaction of every change to rarely changing data (issuers, tenants'
    policy, the catalog, contacts): each process's caches compare it and start afresh."""

    __tablename__ = "cache_versions"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
