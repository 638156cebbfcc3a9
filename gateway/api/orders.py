"""orders."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("orders", __name__, description="orders")
