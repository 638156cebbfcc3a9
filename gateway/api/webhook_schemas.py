"""Bodies of webhook endpoints and their deliveries."""

from __future__ import annotations

import re

import marshmallow as ma
from marshmallow import fields, validate

from gateway.api.schemas import Strict, Timestamp

EVENT_TYPE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")


class EventTypes(fields.List):
    """`["*"]` (every event) or event type names such as `order.completed`."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.Length(1, 60)),
                         validate=validate.Length(1, 100), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        names = super()._deserialize(value, attr, data, **kwargs)
        if "*" in names and len(names) > 1:
            raise ma.ValidationError('"*" stands alone: it already means every event.')
        bad = [n for n in names if n != "*" and not EVENT_TYPE.match(n)]
        if bad:
            raise ma.ValidationError(f"Not event type names: {', '.join(bad)} (e.g. order.completed).")
        return list(dict.fromkeys(names))


Url = validate.Length(1, 2000)


class EndpointInSchema(Strict):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, validate=Url)
    events = EventTypes(required=True)
    tenant_id = fields.String(allow_none=True, validate=validate.Length(1, 40))
    description = fields.String(allow_none=True, validate=validate.Length(max=500))


class EndpointPatchSchema(Strict):
    url = fields.Url(schemes={"http", "https"}, require_tld=False, validate=Url)
    events = EventTypes()
    enabled = fields.Boolean()
    description = fields.String(allow_none=True, validate=validate.Length(max=500))


class EndpointSchema(Strict):
    id = fields.String()
    url = fields.String()
    events = fields.List(fields.String())
    tenant_id = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()


class EndpointCreatedSchema(EndpointSchema):
    secret = fields.String(metadata={"description": "whsec_…: shown only in this answer"})


class DeliveriesQuerySchema(Strict):
    status = fields.String(validate=validate.OneOf(["pending", "succeeded", "failed"]))


class DeliverySchema(Strict):
    id = fields.String()
    endpoint_id = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = Timestamp(allow_none=True)
    created_at = Timestamp()
    delivered_at = Timestamp(allow_none=True)
