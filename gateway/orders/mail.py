"""What the billing contacts are told at each step of an order (design.md §3.8): rendered from
one Jinja template per step and language, with the catalog's product and plan names and money
formatted for the contact's locale by Babel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import bindparam, func, select

from adapters.models import AdvisorCase, PortalQuote
from gateway.orders.models import Order
from routing.money import quantize
from tenants.db import in_list
from tenants.models import (
    Advisor,
    Contact,
    LicenseAssignment,
    Membership,
    Subscription,
    Tenant,
)

LOCALES = ("en", "fr")
DEFAULT_LOCALE = "en"
STEPS = ("awaiting_advisor", "awaiting_acceptance", "completed", "rejected", "withdrawn")
# Parsed once: Babel parses a locale given by its name again at each step of every amount.
_BABEL = {code: Locale.parse(code) for code in LOCALES}
_templates = Environment(loader=FileSystemLoader(Path(__file__).parent / "mail_templates"),
                         undefined=StrictUndefined, keep_trailing_newline=True,
                         trim_blocks=True, lstrip_blocks=True, autoescape=False,
                         auto_reload=False)  # shipped with the code: no stat() per message
# Statements built once and bound per order (building them cost about as much Python as running
# them), run on the session's connection: plain rows, no ORM execution around them.
# The tenant's language (for contacts who chose none) comes along: no read of the tenant apart.
_CONTACTS = (select(Contact.name, Contact.email, Contact.locale, Membership.roles, Tenant.locale)
             .join(Membership, Membership.contact_id == Contact.id)
             .join(Tenant, Tenant.id == Contact.tenant_id)
             .where(Membership.account_id == bindparam("account_id"))
             .order_by(Contact.email))
# Each grown subscription's licenses and how many are assigned: one statement.
# (One subscription by equality: PostgreSQL keeps one generic plan, see services.facts.)
_HELD_OF = select(Subscription.id, Subscription.licenses,
                  select(func.count()).where(LicenseAssignment.subscription_id == Subscription.id)
                  .scalar_subquery())
_HELD = {True: _HELD_OF.where(Subscription.id == bindparam("id")),
         False: _HELD_OF.where(in_list(Subscription.id, "ids"))}


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    locale: str


def locale_of(contact_locale: str | None, tenant_locale: str | None) -> str:
    for choice in (contact_locale, tenant_locale):
        if choice in LOCALES:
            return choice
    return DEFAULT_LOCALE


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """Rounded to the currency's minor unit; a zero is never shown as -0.00."""
    value = quantize(Decimal(amount), currency)
    if value == 0:
        value = abs(value)
    return format_currency(value, currency, locale=_BABEL[locale])


def recipients(db, order: Order, cache=None) -> list[Recipient]:
    """The account's billing contacts. With `cache` (the per-process ConfigCache, which contacts,
    memberships and tenants keep current), read once per account, not once per mail."""
    def load():
        rows = db.connection().execute(_CONTACTS, {"account_id": order.account_id}).all()
        return tuple(Recipient(name, email, locale_of(locale, tenant_locale))
                     for name, email, locale, roles, tenant_locale in rows
                     if "billing_contact" in (roles or ()))

    return list(load() if cache is None else cache.get("recipients", order.account_id, load))


def order_messages(db, order: Order, step: str, *, now: datetime, catalog,
                   base_url: str = "", cache=None) -> list[tuple[str, str, str]]:
    """(to, subject, body) for each billing contact of the order's account, in the contact's
    language, else the tenant's. `catalog(product)` gives a product's `Catalog` (names), and
    `cache` the recipients: the notification job takes both from its per-process cache."""
    return render(read(db, order, step, catalog=catalog, cache=cache), base_url=base_url)


@dataclass(frozen=True)
class Reading:
    """What a step's mail needs from the database, read (`read`) apart from rendering it
    (`render`): a job reads it in its transaction and renders once that has committed."""

    order: Order
    step: str
    facts: dict
    recipients: list[Recipient]


def read(db, order: Order, step: str, *, catalog, cache=None) -> Reading:
    if step not in STEPS:
        raise ValueError(f"unknown notification step {step!r}")
    return Reading(order, step, _facts(db, order, step, catalog), recipients(db, order, cache))


def render(reading: Reading, *, base_url: str = "") -> list[tuple[str, str, str]]:
    out = []
    for person in reading.recipients:
        text = _templates.get_template(f"{person.locale}/{reading.step}.txt").render(
            person=person, order=reading.order, base_url=base_url,
            **_formatted(reading.facts, person.locale))
        subject, _, body = text.partition("\n")
        out.append((person.email, subject.removeprefix("Subject: ").strip(), body.lstrip("\n")))
    return out


def _facts(db, order: Order, step: str, catalog) -> dict:
    names = {}
    for item in order.items:
        known = catalog(item.product)
        names[item.id] = (known.name or item.product, known.plan_names)
    facts: dict = {"names": names, "case": None, "advisor": None, "quote": None, "grown": []}
    if step == "awaiting_advisor":
        case = db.scalar(select(AdvisorCase).where(AdvisorCase.order_id == order.id)
                         .order_by(AdvisorCase.created_at.desc()).limit(1))
        facts["case"] = case
        if case is not None and case.assigned_advisor_id:
            facts["advisor"] = db.get(Advisor, case.assigned_advisor_id)
    if step == "awaiting_acceptance":
        facts["quote"] = db.scalar(select(PortalQuote).where(PortalQuote.order_id == order.id))
    if step == "completed":
        grown = [i for i in order.items if i.licenses > i.licenses_before and i.subscription_id]
        if grown:
            ids = [i.subscription_id for i in grown]
            rows = db.connection().execute(_HELD[len(ids) == 1], {"ids": ids, "id": ids[0]})
            held = {sub_id: (licenses, taken) for sub_id, licenses, taken in rows}
            for item in grown:
                licenses, taken = held[item.subscription_id]
                facts["grown"].append({
                    "item": item, "added": item.licenses - item.licenses_before,
                    "unassigned": max(0, licenses - taken),
                    "subscription_id": item.subscription_id})
    return facts


def _formatted(facts: dict, locale: str) -> dict:
    babel = _BABEL[locale]
    def day(value):
        return format_date(value, format="long", locale=babel)

    def moment(value):
        return format_datetime(value.replace(tzinfo=UTC), format="medium", tzinfo=UTC,
                               locale=babel) + " UTC"

    def plan_name(item, code=None):
        code = code or item.plan
        return facts["names"][item.id][1].get(code, code)

    return {"money": lambda amount, cur: format_money(amount, cur, locale), "day": day,
            "moment": moment, "product_name": lambda item: facts["names"][item.id][0],
            "plan_name": plan_name, "case": facts["case"], "advisor": facts["advisor"],
            "quote": facts["quote"], "grown": facts["grown"]}
