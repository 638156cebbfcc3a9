"""The event feed."""

from __future__ import annotations

from flask.views import MethodView

from gateway.api.billing_schemas import EventSchema, EventsQuerySchema
from gateway.api.blueprint import Blueprint
from gateway.api.pagination import paginated
from gateway.database import session
from gateway.services import events

blp = Blueprint("events", __name__, description="Events")


@blp.route("/events")
class Events(MethodView):
    @blp.response(200, EventSchema(many=True))
    @paginated(blp, EventsQuerySchema, keyset=True)
    def get(self, args):
        """Events after a given id, in order."""
        return events.feed(session(), args.get("after"), args["limit"])
