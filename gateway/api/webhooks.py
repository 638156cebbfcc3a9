"""Webhook endpoints and their deliveries (scope `admin`)."""

from __future__ import annotations

from flask.views import MethodView

from gateway.api.blueprint import Blueprint
from gateway.api.pagination import paginated
from gateway.api.schemas import EmptySchema
from gateway.api.webhook_schemas import (
    DeliveriesQuerySchema,
    DeliverySchema,
    EndpointCreatedSchema,
    EndpointInSchema,
    EndpointPatchSchema,
    EndpointSchema,
)
from gateway.database import session
from gateway.webhooks import endpoints

blp = Blueprint("webhooks", __name__, description="Webhooks for internal systems")


@blp.route("/webhook-endpoints")
class Endpoints(MethodView):
    @blp.response(200, EndpointSchema(many=True))
    @paginated(blp)
    def get(self):
        """List webhook endpoints (without their secrets)."""
        return endpoints.list_all(session())

    @blp.arguments(EndpointInSchema)
    @blp.response(201, EndpointCreatedSchema)
    def post(self, data):
        """Register an endpoint; the answer carries its signing secret, shown only here."""
        return endpoints.create(session(), data)


@blp.route("/webhook-endpoints/<endpoint_id>")
class EndpointById(MethodView):
    @blp.response(200, EndpointSchema)
    def get(self, endpoint_id):
        """Read an endpoint (without its secret)."""
        return endpoints.read(session(), endpoint_id)

    @blp.arguments(EndpointPatchSchema)
    @blp.response(200, EndpointSchema)
    def patch(self, data, endpoint_id):
        """Change an endpoint's url, events, description or enabled flag."""
        return endpoints.patch(session(), endpoint_id, data)

    @blp.response(204)
    def delete(self, endpoint_id):
        """Delete an endpoint and its delivery records."""
        endpoints.remove(session(), endpoint_id)


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries")
class Deliveries(MethodView):
    @blp.response(200, DeliverySchema(many=True))
    @paginated(blp, DeliveriesQuerySchema, keyset=True)
    def get(self, args, endpoint_id):
        """The endpoint's deliveries in event order, with attempts and the last answer."""
        return endpoints.deliveries(session(), endpoint_id, args["limit"], args.get("after"),
                                    args.get("status"))


@blp.route("/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/retry")
class Retry(MethodView):
    @blp.arguments(EmptySchema, required=False)
    @blp.response(202, DeliverySchema)
    def post(self, _data, endpoint_id, delivery_id):
        """Send a delivery again (it joins the endpoint's queue in event order)."""
        return endpoints.retry(session(), endpoint_id, delivery_id)
