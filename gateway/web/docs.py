"""The API documentation page, from assets served here (no CDN: it works offline)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("web_docs", __name__, template_folder="templates")


@bp.get("/docs")
def docs():
    return render_template("docs.html")
