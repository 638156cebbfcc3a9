"""Orders."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from gateway.api.billing_schemas import OrderDetailSchema, OrderInSchema, OrderSchema
from gateway.api.schemas import EmptySchema
from gateway.composition import for_request
from gateway.database import session
from gateway.services import orders

blp = Blueprint("orders", __name__, description="Orders")


@blp.route("/accounts/<account_id>/orders")
class AccountOrders(MethodView):
    @blp.response(200, OrderSchema(many=True))
    def get(self, account_id):
        """The account's orders, newest first."""
        return orders.list_for_account(session(), account_id)

    @blp.arguments(OrderInSchema)
    @blp.response(201, OrderSchema)
    @blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": True,
                          "schema": {"type": "string"}}])
    def post(self, data, account_id):
        """Place an order (idempotent by Idempotency-Key)."""
        placed = orders.place(for_request(), account_id, data, request.headers.get("Idempotency-Key"))
        if placed.replay:  # the first answer, byte for byte as it was serialised then
            return current_app.json.response(placed.body), placed.status
        return placed.body, placed.status


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
    def post(self, _data, order_id):
        """Withdraw an order that waits for an advisor or for acceptance."""
        return orders.withdraw(for_request(), order_id)
