"""The advisors' queue."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from gateway.api.billing_schemas import CaseDetailSchema, CaseSchema
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import EmptySchema, Strict
from gateway.composition import for_request
from gateway.services import advisors

blp = Blueprint("advisor_queue", __name__, description="Advisors' queue")


class CasesQuery(Strict):
    status = fields.String(validate=validate.OneOf(["open", "claimed", "resolved", "withdrawn"]))


class NoteIn(Strict):
    note = fields.String(required=True, validate=validate.Length(1, 2000))


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
        return advisors.list_cases(for_request(), args.get("status"))


@blp.route("/advisor/cases/<case_id>")
class CaseById(MethodView):
    @blp.response(200, CaseDetailSchema)
    @refuses(blp, (403, "not_an_advisor"))
    def get(self, case_id):
        """The case with the account, its billing contacts, the order and the history."""
        return advisors.read_case(for_request(), case_id)


@blp.route("/advisor/cases/<case_id>/claim")
class Claim(MethodView):
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, CaseSchema)
    @refuses(blp, (403, "not_an_advisor"), (409, "case_claimed"), (409, "case_assigned"),
             (409, "case_resolved"), (409, "case_withdrawn"))
    def post(self, _data, case_id):
        """Take a case for a limited lease."""
        return advisors.claim(for_request(), case_id)


@blp.route("/advisor/cases/<case_id>/resolve")
class Resolve(MethodView):
    @blp.arguments(ResolveIn)
    @blp.response(200, CaseSchema)
    @refuses(blp, (403, "not_an_advisor"), (409, "case_claimed"), (409, "case_resolved"),
             (409, "case_withdrawn"), (502, "adapter_unavailable"), (503, "adapter_unavailable"))
    def post(self, data, case_id):
        """Approve (apply the order) or reject it with a note."""
        return advisors.resolve(for_request(), case_id, data["decision"], data.get("note"))


@blp.route("/advisor/cases/<case_id>/release")
class Release(MethodView):
    @blp.arguments(EmptySchema, required=False)
    @blp.response(200, CaseSchema)
    @refuses(blp, (403, "not_an_advisor"), (409, "case_not_claimed"), (409, "case_resolved"))
    def post(self, _data, case_id):
        """Give up one's claim on a case."""
        return advisors.release(for_request(), case_id)


@blp.route("/advisor/cases/<case_id>/notes")
class Notes(MethodView):
    @blp.arguments(NoteIn)
    @blp.response(201, CaseDetailSchema)
    @refuses(blp, (403, "not_an_advisor"))
    def post(self, data, case_id):
        """Add a note to the case's history."""
        return advisors.add_note(for_request(), case_id, data["note"])
