"""The catalog: products, ranked plans and prices."""

from __future__ import annotations

from flask.views import MethodView

from gateway.access import require_scope
from gateway.api.blueprint import Blueprint
from gateway.api.openapi import refuses
from gateway.api.pagination import paginated
from gateway.api.schemas import ProductInSchema, ProductSchema
from gateway.database import session
from gateway.services import admin, views

blp = Blueprint("catalog", __name__, description="Catalog")


@blp.route("/catalog/products")
class Products(MethodView):
    @blp.response(200, ProductSchema(many=True))
    @paginated(blp, key="code")
    def get(self):
        """List products."""
        return [views.product(p) for p in admin.list_products(session())]


@blp.route("/catalog/products/<code>")
class ProductByCode(MethodView):
    @blp.response(200, ProductSchema)
    def get(self, code):
        """Read a product."""
        return views.product(admin.get_product(session(), code))

    @blp.arguments(ProductInSchema)
    @blp.response(200, ProductSchema)
    @refuses(blp, (409, "plan_in_use"), (422, "invalid_product_code"))
    def put(self, data, code):
        """Create or replace a product with its plans and prices."""
        require_scope("admin")
        return views.product(admin.put_product(session(), code, data))
