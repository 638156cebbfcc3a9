"""The embedded corporate billing portal's quotes."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from gateway.api.billing_schemas import PortalQuoteSchema
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import Strict
from gateway.composition import for_request
from gateway.database import session
from gateway.services import portal

blp = Blueprint("portal", __name__, description="Corporate portal quotes")


class AcceptIn(Strict):
    po_number = fields.String(validate=[
        validate.Length(1, 64),
        validate.Predicate("isprintable", error="Printable characters only.")])


class RejectIn(Strict):
    note = fields.String(validate=validate.Length(1, 2000))


@blp.route("/accounts/<account_id>/portal-quotes")
class PortalQuotes(MethodView):
    @blp.response(200, PortalQuoteSchema(many=True))
    @paginated(blp)
    def get(self, account_id):
        """The account's price quotes in the corporate portal."""
        return portal.list_quotes(session(), account_id)


@blp.route("/portal-quotes/<quote_id>/accept")
class Accept(MethodView):
    @blp.arguments(AcceptIn, required=False)
    @blp.response(200, PortalQuoteSchema)
    @refuses(blp, (403, "not_billing_contact"), (409, "quote_closed"), (409, "quote_expired"),
             (422, "po_number_required"), (502, "adapter_unavailable"), (503, "adapter_unavailable"))
    def post(self, data, quote_id):
        """Accept a quote, with a purchase-order number: the order is applied and completed."""
        return portal.decide_quote(for_request(), quote_id, accept=True,
                                   po_number=(data or {}).get("po_number"))


@blp.route("/portal-quotes/<quote_id>/reject")
class Reject(MethodView):
    @blp.arguments(RejectIn, required=False)
    @blp.response(200, PortalQuoteSchema)
    @refuses(blp, (403, "not_billing_contact"), (409, "quote_closed"), (409, "quote_expired"),
             (502, "adapter_unavailable"), (503, "adapter_unavailable"))
    def post(self, data, quote_id):
        """Reject a quote, optionally saying why: the order is rejected with that note."""
        return portal.decide_quote(for_request(), quote_id, accept=False,
                                   note=(data or {}).get("note"))
