"""advisor_queue."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("advisor_queue", __name__, description="advisor_queue")
