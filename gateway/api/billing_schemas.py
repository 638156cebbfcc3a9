"""Bodies of quotes, cart items and orders."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from gateway.api.schemas import MAX_INT, Licenses, Money, Period, Strict, Timestamp


class ChangeSchema(Strict):
    plan = fields.String(validate=validate.Length(1, 60))
    licenses = fields.Integer(strict=True, validate=Licenses)
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


# -- answers (api.md, "Modifying a subscription") -------------------------------------------
class RouteSchema(Strict):
    destination = fields.String()
    reason = fields.String()


class LineSchema(Strict):
    type = fields.String(metadata={"description": "credit_unused | charge"})
    amount = Money()
    description = fields.String()


class TaxSchema(Strict):
    treatment = fields.String(metadata={"description": "standard | reverse_charge | not_applicable"})
    country = fields.String()
    rate = Money()
    amount = Money()
    rates_as_of = fields.String()
    vat_status = fields.String(allow_none=True, metadata={
        "description": "the buyer's VAT number status the treatment relied on (quotes)"})


class RequirementSchema(Strict):
    type = fields.String(metadata={"description": "payment_method | vat_number"})
    status = fields.String(metadata={"description": "outstanding | satisfied"})


class TermsSchema(Strict):
    plan = fields.String()
    licenses = fields.Integer()
    billing_period = fields.String()
    period_start = fields.Date()
    period_end = fields.Date()
    recurring_amount = Money(metadata={"description": "monthly equivalent"})


class TotalsSchema(Strict):
    currency = fields.String()
    net = Money()
    balance_applied = Money()
    credit_added = Money()
    tax = fields.Nested(TaxSchema)
    total_due = Money()


class QuoteSchema(TotalsSchema):
    subscription_id = fields.String(allow_none=True)
    product = fields.String()
    changes = fields.List(fields.String())
    current = fields.Nested(TermsSchema, allow_none=True)
    proposed = fields.Nested(TermsSchema)
    rate_increase = fields.Boolean()
    lines = fields.List(fields.Nested(LineSchema))
    requirements = fields.List(fields.Nested(RequirementSchema))
    route = fields.Nested(RouteSchema)
    next_action = fields.String()


class CartItemSchema(Strict):
    id = fields.String()
    account_id = fields.String()
    subscription_id = fields.String(allow_none=True)
    product = fields.String(allow_none=True)
    plan = fields.String(allow_none=True)
    licenses = fields.Integer(allow_none=True)
    billing_period = fields.String(allow_none=True)
    changes = fields.List(fields.String())
    lines = fields.List(fields.Nested(LineSchema))
    route = fields.Nested(RouteSchema)


class CartTotalsSchema(TotalsSchema):
    rate_increase = fields.Boolean()
    requirements = fields.List(fields.Nested(RequirementSchema))
    route = fields.Nested(RouteSchema)
    next_action = fields.String()


class CartSchema(Strict):
    items = fields.List(fields.Nested(CartItemSchema))
    quote = fields.Nested(CartTotalsSchema, allow_none=True)


class OrderItemOutSchema(Strict):
    subscription_id = fields.String(allow_none=True)
    product = fields.String()
    plan = fields.String()
    licenses = fields.Integer()
    billing_period = fields.String()
    changes = fields.List(fields.String())
    route = fields.Nested(RouteSchema)
    status = fields.String()
    credit = Money()
    charge = Money()
    period_start = fields.Date()
    period_end = fields.Date()


class LicenseAssignmentSchema(Strict):
    subscription_id = fields.String()
    unassigned = fields.Integer()
    assign_url = fields.String()


class OrderSchema(TotalsSchema):
    id = fields.String()
    account_id = fields.String()
    status = fields.String(metadata={"description": "processing | awaiting_advisor | awaiting_acceptance"
                                                    " | completed | rejected | withdrawn"})
    route = fields.Nested(RouteSchema)
    items = fields.List(fields.Nested(OrderItemOutSchema))
    note = fields.String()
    license_assignment = fields.List(fields.Nested(LicenseAssignmentSchema))
    po_number = fields.String(allow_none=True)
    created_at = Timestamp()
    completed_at = Timestamp(allow_none=True)


class PortalQuoteSchema(Strict):
    id = fields.String()
    order_id = fields.String()
    account_id = fields.String()
    status = fields.String(metadata={"description": "open | accepted | rejected | withdrawn"})
    items = fields.List(fields.Dict())
    total_due = Money()
    currency = fields.String()
    expires_at = Timestamp()
    created_at = Timestamp()


class CaseSchema(Strict):
    id = fields.String()
    tenant_id = fields.String()
    account_id = fields.String()
    order_id = fields.String(allow_none=True)
    reason = fields.String()
    status = fields.String(metadata={"description": "open | claimed | resolved | withdrawn"})
    assigned_advisor_id = fields.String(allow_none=True)
    pool = fields.String()
    claimed_by = fields.String(allow_none=True)
    claim_expires_at = Timestamp(allow_none=True)
    due_at = Timestamp()
    decision = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class TermsBeforeSchema(Strict):
    plan = fields.String(allow_none=True)
    licenses = fields.Integer()
    billing_period = fields.String(allow_none=True)
    period_start = fields.Date()
    period_end = fields.Date()


class OrderItemDetailSchema(OrderItemOutSchema):
    current = fields.Nested(TermsBeforeSchema, allow_none=True)
    proposed = fields.Nested(TermsBeforeSchema)


class OrderDetailSchema(OrderSchema):
    items = fields.List(fields.Nested(OrderItemDetailSchema))


class CaseAccountSchema(Strict):
    id = fields.String()
    name = fields.String()
    country = fields.String()
    currency = fields.String()
    billing_channel = fields.String()
    payment_terms = fields.String()
    segment = fields.String()
    segment_reasons = fields.List(fields.String())
    vat_number = fields.String(allow_none=True)
    vat_status = fields.String(allow_none=True)
    credit_balance = Money()
    payment_method = fields.Dict(allow_none=True)


class BillingContactSchema(Strict):
    name = fields.String()
    email = fields.String()


class HistorySchema(Strict):
    at = Timestamp()
    actor = fields.String()
    action = fields.String(metadata={"description": "opened | claimed | released | noted | decided"
                                                    " | withdrawn"})
    note = fields.String(allow_none=True)


class CaseDetailSchema(CaseSchema):
    account = fields.Nested(CaseAccountSchema)
    billing_contacts = fields.List(fields.Nested(BillingContactSchema))
    order = fields.Nested(OrderDetailSchema, allow_none=True)
    route_reason = fields.String()
    history = fields.List(fields.Nested(HistorySchema))


class EventSchema(Strict):
    id = fields.String()
    type = fields.String()
    tenant_id = fields.String()
    created_at = Timestamp()
    data = fields.Dict()


def _event_id(value: str) -> None:
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_INT):
        raise ma.ValidationError("Not an event id.")


class EventsQuerySchema(Strict):
    # An event id is an INTEGER column: anything else is no event id (422, not a query error).
    after = fields.String(validate=_event_id, metadata={"pattern": "^[0-9]{1,10}$"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
