"""The advisors' queue."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from gateway.api.billing_schemas import CaseSchema
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import EmptySchema, Strict
from gateway.database import session
from gateway.services import people_queue

blp = Blueprint("advisor_queue", __name__, description="Advisors' queue")


class CasesQuery(Strict):
    status = fields.String(validate=validate.OneOf(["open", "claimed", "resolved"]))


class ResolveIn(Strict):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    note = fields.String(validate=validate.Length(max=2000))


@blp.route("/advisor/cases")
class Cases(MethodView):
    @blp.response(200, CaseSchema(many=True))
    @paginated(blp, CasesQuery)
    @refuses(blp, (403, "not_an_advisor"))
    def get(self, args):
        """Cases of the advisor's own accounts and pool, oldest due first."""
        return people_queue.list_cases(session(), args.get("status"))


@blp.route("/advisor/cases/<case_id>/claim")
class Claim(MethodView):
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, CaseSchema)
    @refuses(blp, (403, "not_an_advisor"), (409, "case_claimed"), (409, "case_resolved"))
    def post(self, _data, case_id):
        """Take a case for a limited lease."""
        return people_queue.claim(session(), case_id)


@blp.route("/advisor/cases/<case_id>/resolve")
class Resolve(MethodView):
    @blp.arguments(ResolveIn)
    @blp.response(200, CaseSchema)
    @refuses(blp, (403, "not_an_advisor"), (409, "case_claimed"), (409, "case_resolved"),
             (502, "adapter_unavailable"), (503, "adapter_unavailable"))
    def post(self, data, case_id):
        """Approve (apply the order) or reject it with a note."""
        return people_queue.resolve(session(), case_id, data["decision"], data.get("note"))
