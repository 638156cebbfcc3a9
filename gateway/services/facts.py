"""What pricing and ordering read of an account beyond its row, in one statement: licenses
in use, balance held by open orders, the cart, and per subscription its assigned licenses and
whether an open order holds it. Each a scalar subquery, so one round trip whatever the count.

The statements are built once, at import: building them per request (aliases and all) costs
more Python than running them."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import String, bindparam, cast, exists, func, literal_column, select, text
from sqlalchemy.orm import aliased

from gateway.cache import version_column
from gateway.orders.models import (
    OPEN_BALANCE,
    OPEN_STATUSES,
    CartItem,
    IdempotencyRecord,
    Order,
    OrderItem,
)
from gateway.services import policy
from tenants.db import in_list
from tenants.models import Account, LicenseAssignment, Subscription


@dataclass
class AccountFacts:
    active_licenses: int = 0
    reserved: Decimal = Decimal(0)  # credit balance already applied by open orders
    cart_has_items: bool = False
    assigned: dict[str, int] = field(default_factory=dict)  # subscription id -> assigned
    busy: frozenset[str] = frozenset()  # subscriptions an open order is changing
    idempotency_id: int | None = None


def _account_columns(account_id) -> list:
    """Scalar subqueries about one account (`account_id`: a column or a parameter)."""
    a, o, c = aliased(Account), aliased(Order), aliased(CartItem)
    # Kept on the account's row (tenants.active_licenses): summing here would cost a quote
    # one index entry per subscription of the account.
    active = select(a.active_licenses).where(a.id == account_id).scalar_subquery()
    # Summed in Python from the exact text: SQLite stores Money as text. Only open orders that
    # hold a balance (the partial index's own predicate): on SQLite, where the column is text,
    # a zero is not excluded, only summed.
    reserved = (select(func.aggregate_strings(cast(o.balance_applied, String), ","))
                .where(o.account_id == account_id, text(OPEN_BALANCE)).scalar_subquery())
    cart = exists().where(c.account_id == account_id)
    return [active.label("active_licenses"), reserved.label("reserved"),
            cart.label("cart_has_items"), version_column()]


# The open statuses written into the statement, not a list bound (and the SQL rewritten) at
# each execution.
_OPEN = [literal_column(f"'{status}'") for status in OPEN_STATUSES]


def _subscription_columns(subscription_id) -> list:
    a, oi, o = aliased(LicenseAssignment), aliased(OrderItem), aliased(Order)
    assigned = select(func.count()).where(a.subscription_id == subscription_id).scalar_subquery()
    busy = exists().where(oi.subscription_id == subscription_id, oi.order_id == o.id,
                          o.status.in_(_OPEN))
    return [assigned.label("assigned"), busy.label("busy")]


def _idempotency_column():
    r = aliased(IdempotencyRecord)
    return (select(r.id).where(r.scope == bindparam("scope"), r.key == bindparam("key"))
            .scalar_subquery().label("idem_id"))


class Record(SimpleNamespace):
    """An account's or subscription's row, by its entity's attribute names, for what only reads
    it (pricing, a quote, the order being placed). Not an ORM entity: on the hot paths, loading
    the account and the subscription as entities cost more Python than their statement."""


def _record_columns(model, prefix: str) -> list:
    return [prop.columns[0].label(f"{prefix}{prop.key}") for prop in model.__mapper__.column_attrs]


ACCOUNT, SUBSCRIPTION = _record_columns(Account, "a_"), _record_columns(Subscription, "s_")


def account_of(row) -> Record:
    """The account in a row that selected `ACCOUNT`."""
    return _record(row, ACCOUNT, "a_")


def subscription_of(row) -> Record:
    """The subscription in a row that selected `SUBSCRIPTION`."""
    return _record(row, SUBSCRIPTION, "s_")


def _record(row, columns, prefix: str) -> Record:
    mapping = row._mapping
    return Record(**{c.name[len(prefix):]: mapping[c.name] for c in columns})


# A quote: the subscription, its account and all of the above.
QUOTE = (select(*SUBSCRIPTION, *ACCOUNT, *_subscription_columns(Subscription.id),
                *_account_columns(Account.id))
         .select_from(Subscription).join(Account, Account.id == Subscription.account_id)
         .where(Subscription.id == bindparam("subscription_id")))
_FOR_SUBSCRIPTIONS = select(Subscription.id, *_subscription_columns(Subscription.id),
                            *_account_columns(bindparam("account_id")), _idempotency_column())
# One subscription (most orders) by equality: PostgreSQL then keeps one generic plan for the
# prepared statement (0.04 ms to run, nothing to plan); with a list it plans it at each
# execution (0.25 ms), its generic plan hashing the EXISTS above over every open order.
_FOR_ONE = _FOR_SUBSCRIPTIONS.where(Subscription.id == bindparam("sub_id"))
_FOR_MANY = _FOR_SUBSCRIPTIONS.where(in_list(Subscription.id, "sub_ids"))
_FOR_ACCOUNT = select(*_account_columns(bindparam("account_id")), _idempotency_column())
# The same with the tenant's policy, when this process has not cached it yet: a placement's
# first in a process reads it here rather than by a statement of its own.
_POLICY = policy.labelled_columns(bindparam("tenant_id"))
_WITH_POLICY = {statement: statement.add_columns(*_POLICY)
                for statement in (_FOR_ONE, _FOR_MANY, _FOR_ACCOUNT)}


def from_rows(rows, sub_ids=()) -> AccountFacts:
    """AccountFacts from rows carrying the columns above (one row per subscription)."""
    rows = list(rows)
    first = rows[0]._mapping if rows else {}
    facts = AccountFacts(
        active_licenses=int(first.get("active_licenses") or 0),
        reserved=sum((Decimal(x) for x in (first.get("reserved") or "").split(",") if x), Decimal(0)),
        cart_has_items=bool(first.get("cart_has_items")),
        idempotency_id=first.get("idem_id"))
    for row, sub_id in zip(rows, sub_ids, strict=False):
        m = row._mapping
        facts.assigned[sub_id] = int(m["assigned"])
        if m["busy"]:
            facts.busy |= {sub_id}
    return facts


def load(db, cache, account_id: str, sub_ids=(), scope: str | None = None,
         key: str | None = None, tenant_id: str | None = None) -> AccountFacts:
    """One statement: the account's facts, each of `sub_ids`'s, and the id of the idempotency
    record of (`scope`, `key`) if there is one; with `tenant_id`, the tenant's policy too if
    `cache` lacks it (left in `cache` for pricing)."""
    sub_ids = list(dict.fromkeys(sub_ids))
    params = {"account_id": account_id, "scope": scope, "key": key, "tenant_id": tenant_id}
    with_policy = tenant_id is not None and not cache.has("tenant", tenant_id)

    def run(statement, values):
        return db.connection().execute(_WITH_POLICY[statement] if with_policy else statement,
                                       values).all()

    rows = []
    if sub_ids:
        found = run(_FOR_ONE if len(sub_ids) == 1 else _FOR_MANY,
                    dict(params, sub_ids=sub_ids, sub_id=sub_ids[0]))
        by_id = {r.id: r for r in found}
        rows = [by_id[i] for i in sub_ids if i in by_id]
        sub_ids = [r.id for r in rows]
    if not rows:  # no subscription asked for (or none exists): the account's facts alone
        rows = run(_FOR_ACCOUNT, params)
    first = rows[0]._mapping
    cache.observe(first["cache_version"])  # first: a new version empties the cache
    if with_policy and first["policy_require_vat_number"] is not None:  # the tenant exists
        cache.get("tenant", tenant_id, lambda: policy.from_labelled(first))
    return from_rows(rows, sub_ids)
