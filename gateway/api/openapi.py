"""What the OpenAPI document says about errors: one Error schema (api.md's shape with every
extra key), and per operation each status it can answer with its stable codes.

Two sources, merged when the spec is built:
- the rules every operation shares (`StandardErrors`, an apispec plugin): a token (401/403)
  unless the operation is public, a path id (404), a body (400/413/415/422), a query (422);
- what a view refuses in its own right, declared beside it:

      @blp.response(200, ProductSchema)
      @refuses(blp, (409, "plan_in_use"), (422, "invalid_product_code"))
      def put(self, data, code): ...
"""

from __future__ import annotations

from apispec import BasePlugin
from marshmallow import INCLUDE, Schema, fields

from gateway.api.billing_schemas import RequirementSchema

ERROR_REF = {"$ref": "#/components/schemas/Error"}
EXTRA_KEYS = "x-error-codes"


class ContactRefSchema(Schema):
    name = fields.String()
    email = fields.String()


class ErrorSchema(Schema):
    """api.md's error shape; refusals add the keys named in api.md (and decisions.md)."""

    class Meta:
        unknown = INCLUDE  # a refusal may carry more keys than these: additionalProperties

    code = fields.Integer(required=True, metadata={"description": "The HTTP status."})
    status = fields.String(required=True, metadata={"description": "The HTTP reason phrase."})
    error = fields.String(required=True, metadata={"description": "A stable snake_case code."})
    message = fields.String(required=True, metadata={"description": "A human sentence."})
    errors = fields.Dict(keys=fields.String(),
                         metadata={"description": "On 422: field -> messages (`_schema` for the "
                                                  "request as a whole); nested fields nest."})
    reason = fields.String(metadata={"description": "401 invalid_token: why (malformed, expired, "
                                                    "unknown_issuer, ...); VAT: not_registered."})
    next_action = fields.String(metadata={"description": "subscribe_now, add_to_cart, "
                                                         "provide_requirements, ..."})
    requirements = fields.List(fields.Nested(RequirementSchema))
    billing_contacts = fields.List(fields.Nested(ContactRefSchema),
                                   metadata={"description": "403 not_billing_contact: whom to ask."})
    plans = fields.List(fields.String(), metadata={"description": "409 plan_in_use: the plans."})
    issuers = fields.List(fields.String(), metadata={"description": "409 issuer_in_use: the issuers."})


PHRASES = {400: "Bad request", 401: "No token, or a token that is not accepted",
           403: "The token does not give this right", 404: "No such object (or another tenant's)",
           409: "Conflict with the current state", 413: "Body over 1 MiB",
           415: "Body that is not JSON", 422: "Invalid input", 503: "A dependency is unavailable"}


# What pricing a change can refuse (quotes, cart items, orders).
QUOTE_REFUSALS = (
    (403, "not_billing_contact"), (409, "subscription_expired"), (409, "subscription_canceled"),
    (422, "no_change"), (422, "licenses_in_use"), (422, "unknown_plan"), (422, "unknown_product"),
    (422, "price_unavailable"), (422, "invalid_licenses"), (422, "invalid_billing_period"))


# Worked examples for the main operations (design.md worked example: 5 → 6 licenses mid-period).
QUOTE_REQUEST_EXAMPLE = {"plan": "business", "licenses": 6}
QUOTE_EXAMPLE = {
    "subscription_id": "sub_5f1c2a9e0b7d4c31", "currency": "EUR",
    "changes": ["plan_upgrade", "licenses_added"],
    "current": {"plan": "standard", "licenses": 5, "billing_period": "monthly",
                "period_start": "2026-02-20", "period_end": "2026-03-20", "recurring_amount": "145.00"},
    "proposed": {"plan": "business", "licenses": 6, "billing_period": "monthly",
                 "period_start": "2026-03-10", "period_end": "2026-04-10", "recurring_amount": "294.00"},
    "rate_increase": True,
    "lines": [{"type": "credit_unused", "amount": "-51.79", "description": "Unused Standard x5"},
              {"type": "charge", "amount": "294.00", "description": "Business x6, 2026-03-10 to 2026-04-10"}],
    "net": "242.21", "balance_applied": "0.00", "credit_added": "0.00",
    "tax": {"treatment": "standard", "country": "DE", "rate": "0.19", "amount": "46.02",
            "rates_as_of": "2026-01-01"},
    "total_due": "288.23",
    "requirements": [{"type": "payment_method", "status": "satisfied"}],
    "route": {"destination": "billing_center",
              "reason": "Self-serve changes are applied in the billing center."},
    "next_action": "place_order"}
ORDER_REQUEST_EXAMPLE = {"items": [{"subscription_id": "sub_5f1c2a9e0b7d4c31", "plan": "business",
                                    "licenses": 6}]}
ORDER_EXAMPLE = {
    "id": "ord_0c9d8e7f6a5b4c3d", "account_id": "acc_1a2b3c4d5e6f7a8b", "status": "processing",
    "route": QUOTE_EXAMPLE["route"],
    "items": [{"subscription_id": "sub_5f1c2a9e0b7d4c31", "product": "webinar", "plan": "business",
               "licenses": 6, "billing_period": "monthly", "changes": ["plan_upgrade", "licenses_added"],
               "route": QUOTE_EXAMPLE["route"], "status": "processing", "credit": "-51.79",
               "charge": "294.00", "period_start": "2026-03-10", "period_end": "2026-04-10"}],
    "currency": "EUR", "net": "242.21", "balance_applied": "0.00", "credit_added": "0.00",
    "tax": QUOTE_EXAMPLE["tax"], "total_due": "288.23", "created_at": "2026-03-10T09:30:00Z",
    "completed_at": None}


def refuses(blp, *pairs: tuple[int, str]):
    """Declares a view's own refusals: (status, error code) pairs, listed in its responses."""
    by_status: dict[int, list[str]] = {}
    for status, code in pairs:
        by_status.setdefault(status, []).append(code)

    def decorator(view):
        doc = {status: _response(status, codes) for status, codes in by_status.items()}
        return blp.doc(responses=doc)(view)

    return decorator


def _response(status: int, codes) -> dict:
    codes = sorted(set(codes))
    return {"description": f"{PHRASES.get(status, 'Error')}: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": ERROR_REF}}, EXTRA_KEYS: codes}


def _add(responses: dict, status: int, codes) -> None:
    key = str(status)
    current = responses.pop(status, None) or responses.get(key)
    known = current.get(EXTRA_KEYS, []) if isinstance(current, dict) else []
    if isinstance(current, dict) and not known and "content" in current:
        # documented by the view as a success shape (e.g. readyz's 503): leave it
        return
    responses[key] = _response(status, list(known) + list(codes))


class StandardErrors(BasePlugin):
    """Adds the statuses every operation of a kind can answer, with their codes."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, op in (operations or {}).items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            public = op.get("security") == []
            if not public:
                _add(responses, 401, ["missing_token", "invalid_token"])
                _add(responses, 403, ["insufficient_scope"])
            if "{" in (path or ""):
                _add(responses, 404, ["not_found"])
            params = op.get("parameters", [])
            if any(p.get("in") == "query" for p in params if isinstance(p, dict)):
                _add(responses, 422, ["validation_error"])
            if "requestBody" in op:
                _add(responses, 400, ["invalid_json"])
                _add(responses, 415, ["unsupported_media_type"])
                _add(responses, 422, ["validation_error"])
            _add(responses, 413, ["payload_too_large"])
            _add(responses, 422, ["invalid_header"])
            if "description" not in op and op.get("summary"):
                op["description"] = op["summary"]
