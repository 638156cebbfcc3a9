"""Who is at the browser: the signed session names a stored sign-in, resolved to the same
Principal an access token gives, so every use case decides access exactly as for the API."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, g, redirect, request, session, url_for
from sqlalchemy import select

from gateway.auth import principal as principals
from gateway.auth.protector import find_issuer
from gateway.auth.verify import VerifiedToken
from gateway.database import session as db_session
from gateway.web.models import WebSession
from tenants.db import utcnow
from tenants.models import Contact, Issuer, Tenant

PAGES_CLIENT = "gateway-pages"


def begin(kind: str, issuer: str, subject: str, name: str | None, tenant_id: str | None) -> None:
    """A new stored session and a fresh cookie (nothing of the anonymous one carries over)."""
    db = db_session()
    locale = session.get("locale")
    previous = current()
    if previous is not None:  # the session it replaces ends now
        previous.ended_at = utcnow()
    row = WebSession(id=secrets.token_urlsafe(32), kind=kind, issuer=issuer, subject=subject,
                     name=name, tenant_id=tenant_id,
                     expires_at=utcnow() + timedelta(hours=current_app.config["SESSION_HOURS"]))
    db.add(row)
    db.commit()
    session.clear()
    session.permanent = True
    session["sid"] = row.id
    if locale:
        session["locale"] = locale


def end() -> None:
    row = current()
    if row is not None:
        row.ended_at = utcnow()
        db_session().commit()
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


def current() -> WebSession | None:
    if "web_session" in g:
        return g.web_session
    row = None
    sid = session.get("sid")
    if isinstance(sid, str):
        row = db_session().get(WebSession, sid)
        if row is not None and (row.ended_at is not None or row.expires_at <= utcnow()):
            row = None
    g.web_session = row
    return row


def principal_for(row: WebSession):
    """The principal of a stored sign-in, or None when the issuer is no longer trusted."""
    trusted = find_issuer(row.issuer)
    if trusted is None:
        return None
    p = principals.resolve(db_session(), VerifiedToken({"sub": row.subject, "client_id": PAGES_CLIENT},
                                                       trusted))
    if p.kind != row.kind or (p.kind == "advisor" and p.advisor is None):
        return None
    return p


def load() -> None:
    """before_request of every page: g.principal when signed in, and the contact's language."""
    row = current()
    g.person = None
    if row is None:
        return
    # Issuers, memberships and policy are cached per process: look at their version first,
    # as the API's door does before it trusts a token.
    current_app.extensions["gateway.cache"].refresh(db_session())
    p = principal_for(row)
    if p is None:
        return
    g.principal = p
    g.person = row
    if p.kind == "contact" and p.contact_ids:
        contact = db_session().get(Contact, p.contact_ids[0])
        if contact is not None:
            g.contact_locale = contact.locale
            tenant = db_session().get(Tenant, contact.tenant_id)
            g.tenant_locale = tenant.locale if tenant is not None else None


def required(kind: str):
    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if g.get("person") is None or g.person.kind != kind:
                login = "web_auth.advisor_login" if kind == "advisor" else "web_auth.login"
                return redirect(url_for(login, next=request.full_path.rstrip("?")))
            return view(*args, **kwargs)
        return inner
    return wrap


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path only: no scheme, no host, no `//host` or `/\\host` that browsers follow."""
    if not value or not isinstance(value, str) or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n\t\\"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def web_issuers(rows) -> list[Issuer]:
    return [r for r in rows if r.web_client_id]


def staff_issuers() -> list[Issuer]:
    return web_issuers(db_session().scalars(select(Issuer).where(Issuer.staff.is_(True))
                                            .order_by(Issuer.url)))
