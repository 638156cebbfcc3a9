"""quotes."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("quotes", __name__, description="quotes")
