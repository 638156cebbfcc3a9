"""portal."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("portal", __name__, description="portal")
