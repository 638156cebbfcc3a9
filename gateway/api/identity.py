"""Who am I; staff issuers and advisors."""

from __future__ import annotations

from flask.views import MethodView

from gateway.access import principal, require_scope
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.schemas import (
    AdvisorInSchema,
    AdvisorSchema,
    IssuerOutSchema,
    MeSchema,
    StaffIssuerSchema,
)
from gateway.database import session
from gateway.services import admin, identity

blp = Blueprint("identity", __name__, description="Identity: the caller, staff issuers, advisors")


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """Who the token is, and for a contact its accounts with roles."""
        return identity.me(session(), principal())


@blp.route("/staff-issuers")
class StaffIssuers(MethodView):
    @blp.arguments(StaffIssuerSchema)
    @blp.response(201, IssuerOutSchema)
    @refuses(blp, (409, "issuer_conflict"), (422, "invalid_jwks"))
    def post(self, data):
        """Trust an issuer for advisors' tokens."""
        require_scope("admin")
        return admin.create_staff_issuer(session(), data)


@blp.route("/advisors")
class Advisors(MethodView):
    @blp.arguments(AdvisorInSchema)
    @blp.response(201, AdvisorSchema)
    @refuses(blp, (409, "advisor_exists"), (422, "unknown_issuer"))
    def post(self, data):
        """Register an advisor."""
        require_scope("admin")
        return admin.create_advisor(session(), data)
