"""events."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("events", __name__, description="events")
