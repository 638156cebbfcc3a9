"""Orders."""

from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView

from gateway.api.billing_schemas import OrderDetailSchema, OrderInSchema, OrderSchema
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import ORDER_EXAMPLE, ORDER_REQUEST_EXAMPLE, QUOTE_REFUSALS, refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import EmptySchema
from gateway.composition import for_request
from gateway.database import session
from gateway.services import orders

blp = Blueprint("orders", __name__, description="Orders")
# Built once: a schema's nested schemas are built on its first dump, and dumping keeps no state.
_ORDER = OrderSchema()


def _render(answer: dict) -> str:
    """The order as this endpoint answers it; a replay sends the same text again."""
    return current_app.json.dumps(_ORDER.dump(answer)) + "\n"


@blp.route("/accounts/<account_id>/orders")
class AccountOrders(MethodView):
    @blp.response(200, OrderSchema(many=True))
    @paginated(blp)
    def get(self, account_id):
        """The account's orders, newest first."""
        return orders.list_for_account(session(), account_id)

    @blp.arguments(OrderInSchema, example=ORDER_REQUEST_EXAMPLE)
    @blp.response(201, OrderSchema, example=ORDER_EXAMPLE)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True,
                          "schema": {"type": "string", "minLength": 1, "maxLength": 200}}])
    @refuses(blp, (400, "idempotency_key_required"), (400, "idempotency_key_invalid"),
             (409, "cart_not_empty"), (409, "requirements_outstanding"), (409, "subscription_changed"),
             (409, "idempotency_key_in_use"), (422, "idempotency_key_reused"), (422, "cart_empty"),
             (422, "duplicate_subscription"), (422, "amount_too_large"), *QUOTE_REFUSALS)
    def post(self, data, account_id):
        """Place an order (idempotent by Idempotency-Key)."""
        placed = orders.place(for_request(), account_id, data, request.headers.get("Idempotency-Key"),
                              render=_render)
        if placed.text is None:  # a replay of an answer stored before exact texts were kept
            return current_app.json.response(placed.body), placed.status
        return Response(placed.text, placed.status, mimetype="application/json")


@blp.route("/orders/<order_id>")
class OrderById(MethodView):
    @blp.response(200, OrderDetailSchema)
    def get(self, order_id):
        """Read an order."""
        return orders.read(session(), order_id)


@blp.route("/orders/<order_id>/withdraw")
class Withdraw(MethodView):
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, OrderSchema)
    @refuses(blp, (403, "not_billing_contact"), (409, "order_not_withdrawable"))
    def post(self, _data, order_id):
        """Withdraw an order that waits for an advisor or for acceptance."""
        return orders.withdraw(for_request(), order_id)
