"""License assignments."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.schemas import Strict, Timestamp
from gateway.database import session
from gateway.services import licenses

blp = Blueprint("licenses", __name__, description="License assignments")


class AssignInSchema(Strict):
    user_id = fields.String(required=True, validate=validate.Length(1, 40))


class AssignmentSchema(Strict):
    subscription_id = fields.String()
    user_id = fields.String()
    assigned_at = Timestamp()


class HolderSchema(Strict):
    user_id = fields.String()
    assigned_at = Timestamp()


class LicensesSchema(Strict):
    subscription_id = fields.String()
    total = fields.Integer()
    assigned = fields.Integer()
    unassigned = fields.Integer()
    assignments = fields.List(fields.Nested(HolderSchema))


@blp.route("/subscriptions/<subscription_id>/licenses")
class Licenses(MethodView):
    @blp.response(200, LicensesSchema)
    def get(self, subscription_id):
        """Licenses: total, assigned, unassigned and who holds them."""
        return licenses.summary(session(), subscription_id)

    @blp.arguments(AssignInSchema)
    @blp.response(201, AssignmentSchema)
    @refuses(blp, (403, "not_billing_contact"), (409, "no_license_available"), (409, "already_assigned"),
             (422, "unknown_user"))
    def post(self, data, subscription_id):
        """Assign a license to a user."""
        return licenses.assign(session(), subscription_id, data["user_id"])


@blp.route("/subscriptions/<subscription_id>/licenses/<user_id>")
class LicenseByUser(MethodView):
    @blp.response(204)
    @refuses(blp, (403, "not_billing_contact"))
    def delete(self, subscription_id, user_id):
        """Take a license back from a user."""
        licenses.unassign(session(), subscription_id, user_id)
