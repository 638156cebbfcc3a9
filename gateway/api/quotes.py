"""Quotes and the cart."""

from __future__ import annotations

from flask.views import MethodView

from gateway.api.billing_schemas import CartItemSchema, CartSchema, ChangeSchema, ItemSchema, QuoteSchema
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import QUOTE_EXAMPLE, QUOTE_REFUSALS, QUOTE_REQUEST_EXAMPLE, refuses
from gateway.composition import for_request
from gateway.services import cart, quotes

blp = Blueprint("quotes", __name__, description="Quotes and the cart")


@blp.route("/subscriptions/<subscription_id>/quotes")
class Quotes(MethodView):
    @blp.arguments(ChangeSchema, example=QUOTE_REQUEST_EXAMPLE)
    @blp.response(200, QuoteSchema, example=QUOTE_EXAMPLE)
    @refuses(blp, *QUOTE_REFUSALS)
    def post(self, data, subscription_id):
        """Price a change to a subscription."""
        return quotes.quote(for_request(), subscription_id, data)


@blp.route("/accounts/<account_id>/cart")
class Cart(MethodView):
    @blp.response(200, CartSchema)
    @refuses(blp, *QUOTE_REFUSALS)
    def get(self, account_id):
        """The cart's items and order-level totals."""
        return cart.read(for_request(), account_id)


@blp.route("/accounts/<account_id>/cart/items")
class CartItems(MethodView):
    @blp.arguments(ItemSchema)
    @blp.response(201, CartItemSchema)
    @refuses(blp, (409, "already_in_cart"), *QUOTE_REFUSALS)
    def post(self, data, account_id):
        """Add a change (or a new subscription) to the cart."""
        return cart.add(for_request(), account_id, data)


@blp.route("/accounts/<account_id>/cart/items/<item_id>")
class CartItem(MethodView):
    @blp.arguments(ChangeSchema)
    @blp.response(200, CartItemSchema)
    @refuses(blp, *QUOTE_REFUSALS)
    def patch(self, data, account_id, item_id):
        """Edit a cart item."""
        return cart.edit(for_request(), account_id, item_id, data)

    @blp.response(204)
    @refuses(blp, (403, "not_billing_contact"))
    def delete(self, account_id, item_id):
        """Remove a cart item."""
        cart.remove(for_request(), account_id, item_id)
