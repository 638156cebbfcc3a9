"""Headers on every answer: no framing, no sniffing, scripts and styles from this origin only."""

from __future__ import annotations

from flask import Flask, request

PAGES_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# Swagger UI sets style attributes from its scripts; its scripts still come from here only.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def init_app(app: Flask, page_blueprints: set[str]) -> None:
    @app.after_request
    def _headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        docs = request.blueprint == "web_docs"
        h.setdefault("Content-Security-Policy", DOCS_CSP if docs else PAGES_CSP)
        if request.blueprint in page_blueprints and response.mimetype == "text/html":
            # A page may show account data: never kept by shared caches or the back button.
            h.setdefault("Cache-Control", "no-store")
        return response
