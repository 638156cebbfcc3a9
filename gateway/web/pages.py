"""What every page blueprint shares: who is signed in, CSRF on every form, error pages."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from gateway.errors import GatewayError
from gateway.web import people

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Called by other servers, never by a browser form: the OpenID token endpoint.
CSRF_EXEMPT = frozenset({"web_dev_issuer.token"})


def blueprint(name: str, import_name: str, **kwargs) -> Blueprint:
    bp = Blueprint(name, import_name, template_folder="templates", **kwargs)

    @bp.before_request
    def _before():
        if request.method in UNSAFE and request.endpoint not in CSRF_EXEMPT:
            # Flask-WTF registers its CSRFProtect here: no import back into gateway.web's
            # __init__, which imports this module's users (an import cycle).
            current_app.extensions["csrf"].protect()
        people.load()

    bp.register_error_handler(GatewayError, gateway_error)
    bp.register_error_handler(CSRFError, csrf_error)
    bp.register_error_handler(HTTPException, http_error)
    return bp


def error_page(status: int, title: str, message: str):
    return render_template("error.html", title=title, message=message, status=status), status


def gateway_error(exc: GatewayError):
    if exc.status == 404:
        return not_found()
    return error_page(exc.status, _("That did not work"), exc.message)


def not_found():
    return error_page(404, _("Not found"),
                      _("There is nothing here, or it is not yours to see."))


def csrf_error(exc: CSRFError):
    return error_page(400, _("The form has expired"),
                      _("Reload the page and send the form again."))


def http_error(exc: HTTPException):
    if exc.code == 404:
        return not_found()
    return error_page(exc.code or 500, exc.name, exc.description or "")
