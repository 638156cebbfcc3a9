"""Bodies of quotes, cart items and orders."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from gateway.api.schemas import Count, Period, Strict


class ChangeSchema(Strict):
    plan = fields.String(validate=validate.Length(1, 60))
    licenses = fields.Integer(strict=True, validate=Count)
    billing_period = fields.String(validate=Period)


class ItemSchema(ChangeSchema):
    subscription_id = fields.String(validate=validate.Length(1, 40))
    product = fields.String(validate=validate.Length(1, 60))

    @validates_schema
    def _form(self, data, **kwargs):
        if data.get("subscription_id"):
            if "product" in data:
                raise ma.ValidationError("Name a subscription or a product, not both.", "product")
            return
        missing = [k for k in ("product", "plan", "licenses", "billing_period") if k not in data]
        if missing:
            raise ma.ValidationError(
                {k: ["Required to buy a new subscription (or give subscription_id)."] for k in missing})


class OrderInSchema(Strict):
    items = fields.List(fields.Nested(ItemSchema), validate=validate.Length(1, 50))
    cart = fields.Boolean()

    @validates_schema
    def _one(self, data, **kwargs):
        if bool(data.get("items")) == bool(data.get("cart")):
            raise ma.ValidationError("Give either items or \"cart\": true.", "items")


class AnySchema(ma.Schema):
    """Response bodies built by the use cases (documented in api.md)."""

    class Meta:
        unknown = ma.INCLUDE

    @ma.post_dump(pass_original=True)
    def _keep(self, data, original, **kwargs):
        return original


class EventsQuerySchema(Strict):
    after = fields.String(validate=validate.Regexp(r"^\d+$"))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
