"""Tenants and their accounts."""

from __future__ import annotations

from flask.views import MethodView

from gateway.access import require_any_scope, require_scope
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import (
    AccountInSchema,
    AccountSchema,
    TenantInSchema,
    TenantPatchSchema,
    TenantSchema,
)
from gateway.database import session
from gateway.services import accounts, admin, views

blp = Blueprint("tenants", __name__, description="Tenants")
READERS = frozenset({"admin", "read"})


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.response(200, TenantSchema(many=True))
    @paginated(blp)
    def get(self):
        """List tenants."""
        require_any_scope(READERS, "read")
        return [views.tenant(t) for t in admin.list_tenants(session())]

    @blp.arguments(TenantInSchema)
    @blp.response(201, TenantSchema)
    @refuses(blp, (409, "slug_taken"), (409, "issuer_conflict"), (422, "invalid_jwks"))
    def post(self, data):
        """Create a tenant with its trusted issuers and policy."""
        require_scope("admin")
        return views.tenant(admin.create_tenant(session(), data))


@blp.route("/tenants/<tenant_id>")
class TenantById(MethodView):
    @blp.response(200, TenantSchema)
    def get(self, tenant_id):
        """Read a tenant."""
        return views.tenant(accounts.visible_tenant(session(), tenant_id))

    @blp.arguments(TenantPatchSchema)
    @blp.response(200, TenantSchema)
    @refuses(blp, (409, "issuer_in_use"), (409, "issuer_conflict"), (422, "invalid_jwks"))
    def patch(self, data, tenant_id):
        """Change a tenant's name, issuers or policy."""
        return views.tenant(accounts.patch_tenant(session(), tenant_id, data))


@blp.route("/tenants/<tenant_id>/accounts")
class TenantAccounts(MethodView):
    @blp.response(200, AccountSchema(many=True))
    @paginated(blp)
    def get(self, tenant_id):
        """List a tenant's accounts."""
        return accounts.list_for_tenant(session(), tenant_id)

    @blp.arguments(AccountInSchema)
    @blp.response(201, AccountSchema)
    @refuses(blp, (422, "unknown_advisor"), (422, "invalid_vat_number"))
    def post(self, data, tenant_id):
        """Create an account."""
        return accounts.create(session(), tenant_id, data)
