"""Catalog look-ups: plan ranks and per-license prices."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import joinedload

from tenants.models import Plan, Product


class Catalog:
    """One product's plans and prices, loaded once per use case."""

    def __init__(self, product: Product | None):
        self.product = product  # kept only to tell "no such product"; may be detached (cached)
        self.ranks = {p.code: p.rank for p in product.plans} if product else {}
        self.name = product.name if product else None
        self.plan_names = {p.code: p.name for p in product.plans} if product else {}
        self._prices = {
            (p.code, x.currency, x.billing_period): x.unit_amount
            for p in (product.plans if product else ()) for x in p.prices
        }

    @classmethod
    def load(cls, db, code: str) -> Catalog:
        # The product, its plans and their prices in one round trip instead of three.
        return cls(db.get(Product, code, options=[joinedload(Product.plans).joinedload(Plan.prices)]))

    def price(self, plan: str, currency: str, billing_period: str) -> Decimal | None:
        return self._prices.get((plan, currency, billing_period))
