"""The embedded corporate billing portal's quotes."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from gateway.api.billing_schemas import PortalQuoteSchema
from gateway.database import session
from gateway.services import people_queue

blp = Blueprint("portal", __name__, description="Corporate portal quotes")


@blp.route("/accounts/<account_id>/portal-quotes")
class PortalQuotes(MethodView):
    @blp.response(200, PortalQuoteSchema(many=True))
    def get(self, account_id):
        """The account's price quotes in the corporate portal."""
        return people_queue.list_quotes(session(), account_id)


@blp.route("/portal-quotes/<quote_id>/accept")
class Accept(MethodView):
    @blp.response(200, PortalQuoteSchema)
    def post(self, quote_id):
        """Accept a quote: the order is applied and completed."""
        return people_queue.decide_quote(session(), quote_id, accept=True)


@blp.route("/portal-quotes/<quote_id>/reject")
class Reject(MethodView):
    @blp.response(200, PortalQuoteSchema)
    def post(self, quote_id):
        """Reject a quote: the order is rejected."""
        return people_queue.decide_quote(session(), quote_id, accept=False)
