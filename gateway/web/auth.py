"""Sign-in with OpenID Connect (contacts: their tenant's issuer; advisors: the staff issuer),
sign-out, the language switch, and the pages' static assets."""

from __future__ import annotations

import logging

from authlib.common.errors import AuthlibBaseError
from flask import current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from joserfc.errors import JoseError
from sqlalchemy import select

from gateway.auth import principal as principals
from gateway.auth.protector import find_issuer
from gateway.auth.verify import VerifiedToken
from gateway.database import session as db_session
from gateway.web import i18n, oidc, pages, people
from tenants.models import Issuer, Tenant

log = logging.getLogger(__name__)
bp = pages.blueprint("web_auth", __name__, static_folder="static", static_url_path="/assets")


@bp.get("/login")
def login():
    nxt = people.safe_next(request.args.get("next"))
    slug = request.args.get("tenant", "").strip()
    if not slug:
        return render_template("login.html", next=nxt, slug="", error=None)
    tenant = db_session().scalar(select(Tenant).where(Tenant.slug == slug[:100]))
    issuers = people.web_issuers(tenant.issuers) if tenant else []
    if not issuers:
        error = (_("We do not know that organisation.") if tenant is None
                 else _("This organisation has not set up sign-in to these pages."))
        return render_template("login.html", next=nxt, slug=slug, error=error), 404 if tenant is None else 409
    chosen = _pick(issuers)
    if chosen is None:
        return render_template("choose_issuer.html", issuers=issuers, next=nxt, tenant=tenant,
                               endpoint="web_auth.login")
    return _start(chosen, "contact", tenant.id, nxt)


@bp.get("/advisor/login")
def advisor_login():
    nxt = people.safe_next(request.args.get("next"), "/advisor")
    issuers = people.staff_issuers()
    if not issuers:
        return pages.error_page(409, _("Sign-in is not set up"),
                                _("No staff issuer has a web client for these pages."))
    chosen = _pick(issuers)
    if chosen is None:
        return render_template("choose_issuer.html", issuers=issuers, next=nxt, tenant=None,
                               endpoint="web_auth.advisor_login")
    return _start(chosen, "advisor", None, nxt)


def _pick(issuers: list[Issuer]) -> Issuer | None:
    if len(issuers) == 1:
        return issuers[0]
    wanted = request.args.get("issuer")
    return next((i for i in issuers if i.id == wanted), None)


def _start(issuer: Issuer, kind: str, tenant_id: str | None, nxt: str):
    session["login"] = {"issuer": issuer.id, "kind": kind, "tenant_id": tenant_id, "next": nxt}
    _release()
    try:
        return oidc.client(issuer).authorize_redirect(url_for("web_auth.callback", _external=True))
    except Exception as exc:  # discovery failed: the IdP is down or not an OpenID provider
        log.warning("sign-in discovery failed for %s: %s", issuer.url, exc)
        return pages.error_page(502, _("Sign-in is unavailable"),
                                _("Your organisation's sign-in service did not answer. Try again later."))


def _release() -> None:
    """End the read transaction before calling the issuer: on SQLite it holds the write lock,
    and the development issuer is this very process."""
    db_session().commit()


@bp.get("/auth/callback")
def callback():
    started = session.pop("login", None)
    if not isinstance(started, dict):
        return pages.error_page(400, _("Sign-in failed"), _("Start again from the sign-in page."))
    db = db_session()
    issuer = db.get(Issuer, started["issuer"])
    if issuer is None or not issuer.web_client_id:
        return pages.error_page(400, _("Sign-in failed"), _("Start again from the sign-in page."))
    _release()
    try:
        client = oidc.client(issuer)
        token = client.authorize_access_token(claims_options=oidc.claims_options(issuer), leeway=30)
    except (AuthlibBaseError, JoseError, ValueError, KeyError, OSError) as exc:
        log.warning("sign-in refused for %s: %r", issuer.url, exc)
        return pages.error_page(400, _("Sign-in failed"), _("Your sign-in could not be verified."))
    claims = token.get("userinfo")
    if not claims:  # no ID token at all: an access token alone says nothing about who signed in
        return pages.error_page(400, _("Sign-in failed"), _("Your sign-in could not be verified."))
    subject = claims["sub"]
    trusted = find_issuer(issuer.url)
    p = None
    if trusted is not None:
        p = principals.resolve(db, VerifiedToken({"sub": subject, "client_id": people.PAGES_CLIENT},
                                                 trusted))
    # Whoever the issuer vouched for: a contact of an account, or a registered advisor (an
    # issuer may be both a tenant's and the staff issuer, as the development issuer is).
    if p is not None and p.kind == "advisor" and p.advisor is not None:
        kind = "advisor"
    elif p is not None and p.kind == "contact" and p.memberships:
        kind = "contact"
    else:
        return pages.error_page(403, _("No access"),
                                _("You signed in, but you have no access to these pages."))
    name = p.advisor.name if p.advisor is not None else claims.get("name")
    people.begin(kind, issuer.url, subject, name, started.get("tenant_id"))
    default = "/advisor" if kind == "advisor" else "/"
    return redirect(people.safe_next(started.get("next"), default))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    if request.method == "GET":
        return render_template("logout.html")
    people.end()
    return redirect(url_for("web_auth.login"))


@bp.post("/language")
def language():
    chosen = request.form.get("locale")
    if chosen in i18n.LOCALES:
        session["locale"] = chosen
    return redirect(people.safe_next(request.form.get("next")))


@bp.get("/favicon.ico")
def favicon():
    # Browsers ask for it whatever the page says; the one icon, from this gateway.
    return bp.send_static_file("favicon.svg")


@bp.app_context_processor
def _globals():
    return {"person": g.get("person"), "here": request.full_path.rstrip("?") if request else "/",
            "dev_issuer": current_app.config["DEV_ISSUER"]}
