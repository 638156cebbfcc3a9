"""The billing contact's pages: subscriptions, modify with a live order summary, requirements,
cart, orders, licenses and portal quotes. Every action is a use-case call, as in the API."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlencode

import marshmallow as ma
from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import fields, validate
from sqlalchemy import select

from adapters.models import AdvisorCase
from gateway.access import billing_contacts
from gateway.api.billing_schemas import ChangeSchema
from gateway.api.portal import AcceptIn
from gateway.api.schemas import Count, Period
from gateway.composition import for_request
from gateway.database import session as db_session
from gateway.errors import GatewayError
from gateway.services import (
    accounts,
    admin,
    advisors,
    cart,
    identity,
    licenses,
    orders,
    portal,
    quotes,
    requirements,
)
from gateway.web import pages, people
from tenants.models import Advisor

bp = pages.blueprint("web_billing", __name__)
signed_in = people.required("contact")


class ChangeForm(ChangeSchema):
    """The modify form: what ChangeSchema accepts, with numbers typed as text."""

    licenses = fields.Integer(validate=Count)
    billing_period = fields.String(validate=Period)


class NewForm(ChangeForm):
    product = fields.String(validate=validate.Length(1, 60))


CHANGE_FIELDS = ("plan", "licenses", "billing_period")


def _change(source, keys=CHANGE_FIELDS, form=ChangeForm) -> tuple[dict, dict]:
    raw = {k: source.get(k) for k in keys if source.get(k) not in (None, "")}
    try:
        return form().load(raw), {}
    except ma.ValidationError as exc:
        return {}, exc.messages


# -- helpers ---------------------------------------------------------------------------------
def my_accounts() -> list[dict]:
    return identity.me(db_session(), g.principal)["accounts"]


def can_bill(account_id: str) -> bool:
    return "billing_contact" in g.principal.roles_on(account_id)


def whom_to_ask(account_id: str) -> list[dict]:
    return billing_contacts(db_session(), account_id)


def catalog_names(product: str) -> dict:
    try:
        row = admin.get_product(db_session(), product)
    except GatewayError:
        return {"name": product, "plans": {}, "plan_codes": []}
    return {"name": row.name, "plans": {p.code: p.name for p in row.plans},
            "plan_codes": [p.code for p in row.plans]}


def handler_of(order_id: str) -> dict | None:
    """Who handles a waiting order, and by when (the advisor case opened for it)."""
    db = db_session()
    case = db.scalar(select(AdvisorCase).where(AdvisorCase.order_id == order_id)
                     .order_by(AdvisorCase.created_at.desc()))
    if case is None:
        return None
    name = None
    if case.assigned_advisor_id:
        advisor = db.get(Advisor, case.assigned_advisor_id)
        name = advisor.name if advisor else None
    return {"advisor": name, "pool": case.pool, "due_at": case.due_at, "status": case.status}


def account_advisor(account: dict) -> str | None:
    if not account.get("advisor_id"):
        return None
    advisor = db_session().get(Advisor, account["advisor_id"])
    return advisor.name if advisor else None


# -- home and a subscription -----------------------------------------------------------------
@bp.get("/")
def home():
    if g.get("person") is None:
        return redirect(url_for("web_auth.login"))
    if g.person.kind == "advisor":
        return redirect(url_for("web_advisor.queue"))
    db = db_session()
    shown = []
    for a in my_accounts():
        account = accounts.read(db, a["account_id"])
        subs = []
        for s in accounts.list_subscriptions(db, a["account_id"]):
            s["names"] = catalog_names(s["product"])
            s["assigned"] = licenses.summary(db, s["id"])["assigned"]
            subs.append(s)
        billing = "billing_contact" in a["roles"]
        shown.append({"account": account, "roles": a["roles"], "subscriptions": subs,
                      "billing": billing,
                      "cart_count": len(cart.items(db, a["account_id"])) if billing else 0,
                      "orders": orders.list_for_account(db, a["account_id"])[:5],
                      "ask": whom_to_ask(a["account_id"])})
    return render_template("home.html", accounts=shown)


def _subscription(subscription_id: str):
    db = db_session()
    sub = accounts.read_subscription(db, subscription_id)
    account = accounts.read(db, sub["account_id"])
    sub["names"] = catalog_names(sub["product"])
    return sub, account


@bp.get("/subscriptions/<subscription_id>")
@signed_in
def subscription(subscription_id):
    sub, account = _subscription(subscription_id)
    db = db_session()
    seats = licenses.summary(db, subscription_id)
    history = [o for o in orders.list_for_account(db, account["id"])
               if any(i["subscription_id"] == subscription_id for i in o["items"])]
    return render_template("subscription.html", sub=sub, account=account, seats=seats,
                           orders=history, billing=can_bill(account["id"]),
                           ask=whom_to_ask(account["id"]))


# -- modify / subscribe now ------------------------------------------------------------------
def _summary(sub: dict, account: dict, change: dict, errors: dict):
    """The priced summary of the change, or the refusal with the field it is about."""
    if errors or not change:
        return None, errors
    try:
        if sub["status"] == "expired":
            return quotes.quote_new(for_request(), account["id"], dict(change, product=sub["product"])), {}
        return quotes.quote(for_request(), sub["id"], change), {}
    except GatewayError as exc:
        found = exc.extra.get("errors") or {"_schema": [exc.message]}
        return None, found


def _terms(sub: dict, change: dict) -> dict:
    return {k: change.get(k, sub[k]) for k in CHANGE_FIELDS}


def render_modify(sub, account, change, errors, *, status=200, vat_error=None, notice=None):
    quote, errors = _summary(sub, account, change, errors)
    handler = due = None
    if quote and quote["route"]["destination"] == "advisor_queue":
        handler = account_advisor(account) or _("Corporate Account Services")
        due = advisors.answer_due(for_request(), account["tenant_id"])
    context = dict(sub=sub, account=account, terms=_terms(sub, change), quote=quote,
                   errors=errors, vat_error=vat_error, notice=notice, handler=handler, due=due,
                   billing=can_bill(account["id"]), ask=whom_to_ask(account["id"]),
                   key=str(uuid.uuid4()), query=urlencode(_terms(sub, change)))
    if request.headers.get("HX-Request") and request.args.get("fragment") == "summary":
        return render_template("_summary.html", **context), status
    return render_template("modify.html", **context), status


@bp.get("/subscriptions/<subscription_id>/modify")
@signed_in
def modify(subscription_id):
    sub, account = _subscription(subscription_id)
    if sub["status"] == "expired" and "plan" not in request.args:
        # "Subscribe now": start from the trial's terms on the first paid plan above it.
        return render_modify(sub, account, {}, {})
    change, errors = _change(request.args)
    # The form always sends every field: what equals the current terms is no change.
    if sub["status"] != "expired":
        change = {k: v for k, v in change.items() if v != sub[k]} if change else change
        if not change and not errors and request.args:
            errors = {"_schema": [_("Choose a different plan, number of licenses or billing period.")]}
    return render_modify(sub, account, change, errors)


@bp.post("/subscriptions/<subscription_id>/modify")
@signed_in
def modify_act(subscription_id):
    sub, account = _subscription(subscription_id)
    change, errors = _change(request.form)
    if sub["status"] != "expired":
        change = {k: v for k, v in change.items() if v != sub[k]}
    action = request.form.get("action")
    if errors or not change:
        return render_modify(sub, account, change, errors, status=422)
    if sub["status"] == "expired":
        item = dict(change, product=sub["product"])
    else:
        item = dict(change, subscription_id=sub["id"])
    try:
        if action == "cart":
            cart.add(for_request(), account["id"], item)
            return redirect(url_for("web_billing.cart_page", account=account["id"]))
        placed = orders.place(for_request(), account["id"], {"items": [item]}, request.form.get("key") or "")
        return redirect(url_for("web_billing.order", order_id=placed.body["id"]))
    except GatewayError as exc:
        if exc.status == 404:
            raise
        return render_modify(sub, account, change, {}, status=exc.status, notice=exc.message)


@bp.post("/subscriptions/<subscription_id>/vat-number")
@signed_in
def vat_number(subscription_id):
    sub, account = _subscription(subscription_id)
    change, errors = _change(request.form)
    if sub["status"] != "expired":
        change = {k: v for k, v in change.items() if v != sub[k]}
    try:
        requirements.set_vat_number(db_session(), account["id"], request.form.get("vat_number", "")[:40])
    except GatewayError as exc:
        if exc.status == 404:
            raise
        message = (exc.extra.get("errors") or {}).get("vat_number", [exc.message])[0]
        return render_modify(sub, account, change, errors, status=422, vat_error=message)
    return redirect(url_for("web_billing.modify", subscription_id=sub["id"], **_terms(sub, change)))


# -- payment method: a stand-in for the payment provider's widget ----------------------------
@bp.get("/payment-widget")
@signed_in
def payment_widget():
    return render_template("payment_widget.html", account_id=request.args.get("account", ""),
                           next=people.safe_next(request.args.get("next")), error=None)


@bp.post("/payment-widget")
@signed_in
def payment_widget_tokenize():
    """Stands for the provider's side: the card number stays here; only a token goes on."""
    number = "".join(c for c in request.form.get("card_number", "") if c.isdigit())
    account_id = request.form.get("account", "")
    nxt = people.safe_next(request.form.get("next"))
    try:
        month, year = int(request.form.get("exp_month", "")), int(request.form.get("exp_year", ""))
    except ValueError:
        month = year = 0
    if not 13 <= len(number) <= 19 or not 1 <= month <= 12 or not 2000 <= year <= 2100:
        return render_template("payment_widget.html", account_id=account_id, next=nxt,
                               error=_("Check the card number and expiry date.")), 422
    brand = {"4": "visa", "5": "mastercard", "3": "amex"}.get(number[0], "card")
    card = {"token": "tok_" + secrets.token_urlsafe(18), "brand": brand, "last4": number[-4:],
            "exp_month": month, "exp_year": year}
    return render_template("payment_confirm.html", card=card, account_id=account_id, next=nxt)


@bp.post("/accounts/<account_id>/payment-method")
@signed_in
def payment_method(account_id):
    form = request.form
    try:
        data = {"token": form.get("token", "")[:200], "brand": form.get("brand", "")[:40],
                "last4": form.get("last4", "")[:4], "exp_month": int(form.get("exp_month", "0")),
                "exp_year": int(form.get("exp_year", "0"))}
    except ValueError:
        abort(400)
    requirements.set_payment_method(db_session(), account_id, data)
    return redirect(people.safe_next(form.get("next")))


# -- cart ------------------------------------------------------------------------------------
def _cart_account(account_id: str | None) -> str:
    mine = [a["account_id"] for a in my_accounts() if "billing_contact" in a["roles"]]
    if account_id:
        return account_id
    if not mine:
        abort(404)
    return mine[0]


def render_cart(account_id: str, *, status=200, notice=None, errors=None, vat_error=None):
    db = db_session()
    account = accounts.read(db, account_id)
    if not can_bill(account_id):
        return render_template("cart.html", account=account, cart=None, billing=False,
                               ask=whom_to_ask(account_id)), status
    try:
        content = cart.read(for_request(), account_id)
    except GatewayError as exc:
        if exc.status == 404:
            raise
        content, notice = {"items": [], "quote": None}, exc.message
        content["items"] = [cart.item_view(i, None, account["currency"]) for i in cart.items(db, account_id)]
    for item in content["items"]:
        if item.get("subscription_id"):
            item["sub"] = accounts.read_subscription(db, item["subscription_id"])
        item["names"] = catalog_names(item.get("product") or item["sub"]["product"])
    return render_template("cart.html", account=account, cart=content, billing=True,
                           notice=notice, errors=errors or {}, vat_error=vat_error,
                           key=str(uuid.uuid4())), status


@bp.get("/cart")
@signed_in
def cart_page():
    return render_cart(_cart_account(request.args.get("account")))


@bp.post("/cart/<account_id>/items/<item_id>")
@signed_in
def cart_item(account_id, item_id):
    try:
        if request.form.get("action") == "remove":
            cart.remove(for_request(), account_id, item_id)
        else:
            change, errors = _change(request.form)
            if errors:
                return render_cart(account_id, status=422, errors={item_id: errors})
            cart.edit(for_request(), account_id, item_id, change)
    except GatewayError as exc:
        if exc.status == 404:
            raise
        return render_cart(account_id, status=exc.status, notice=exc.message)
    return redirect(url_for("web_billing.cart_page", account=account_id))


@bp.post("/cart/<account_id>/vat-number")
@signed_in
def cart_vat_number(account_id):
    try:
        requirements.set_vat_number(db_session(), account_id, request.form.get("vat_number", "")[:40])
    except GatewayError as exc:
        if exc.status == 404:
            raise
        message = (exc.extra.get("errors") or {}).get("vat_number", [exc.message])[0]
        return render_cart(account_id, status=422, vat_error=message)
    return redirect(url_for("web_billing.cart_page", account=account_id))


@bp.post("/cart/<account_id>/place")
@signed_in
def cart_place(account_id):
    try:
        placed = orders.place(for_request(), account_id, {"cart": True}, request.form.get("key") or "")
    except GatewayError as exc:
        if exc.status == 404:
            raise
        return render_cart(account_id, status=exc.status, notice=exc.message)
    return redirect(url_for("web_billing.order", order_id=placed.body["id"]))


# -- orders ----------------------------------------------------------------------------------
@bp.get("/orders/<order_id>")
@signed_in
def order(order_id):
    db = db_session()
    body = orders.read(db, order_id)
    account = accounts.read(db, body["account_id"])
    for item in body["items"]:
        item["names"] = catalog_names(item["product"])
    return render_template("order.html", order=body, account=account, billing=can_bill(account["id"]),
                           ask=whom_to_ask(account["id"]), handler=handler_of(order_id),
                           withdrawable=body["status"] in WAITING)


# An order that still waits for a person may be withdrawn (design.md §3.7).
WAITING = ("awaiting_advisor", "awaiting_acceptance")


@bp.post("/orders/<order_id>/withdraw")
@signed_in
def withdraw(order_id):
    orders.withdraw(for_request(), order_id)
    return redirect(url_for("web_billing.order", order_id=order_id))


# -- licenses --------------------------------------------------------------------------------
def render_licenses(subscription_id: str, *, status=200, notice=None, errors=None):
    db = db_session()
    sub, account = _subscription(subscription_id)
    seats = licenses.summary(db, subscription_id)
    users = admin.list_users(db, _account_row(account["id"]))
    holders = {a["user_id"] for a in seats["assignments"]}
    return render_template("licenses.html", sub=sub, account=account, seats=seats, users=users,
                           holders=holders, billing=can_bill(account["id"]),
                           ask=whom_to_ask(account["id"]), notice=notice,
                           errors=errors or {}), status


def _account_row(account_id: str):
    from gateway.access import load_account

    return load_account(db_session(), account_id)


@bp.get("/subscriptions/<subscription_id>/licenses")
@signed_in
def licenses_page(subscription_id):
    return render_licenses(subscription_id)


@bp.post("/subscriptions/<subscription_id>/licenses")
@signed_in
def licenses_act(subscription_id):
    db = db_session()
    action = request.form.get("action")
    try:
        if action == "assign":
            licenses.assign(db, subscription_id, request.form.get("user_id", "")[:40])
        elif action == "unassign":
            licenses.unassign(db, subscription_id, request.form.get("user_id", "")[:40])
        elif action == "add_user":
            sub = accounts.read_subscription(db, subscription_id)
            name = request.form.get("name", "").strip()[:200]
            email = request.form.get("email", "").strip()[:320]
            errors = {}
            if not name:
                errors["name"] = [_("Give the user's name.")]
            if "@" not in email:
                errors["email"] = [_("Give the user's e-mail address.")]
            if errors:
                return render_licenses(subscription_id, status=422, errors=errors)
            user = accounts.add_user(db, sub["account_id"], {"name": name, "email": email})
            if request.form.get("assign"):
                licenses.assign(db, subscription_id, user.id)
        else:
            abort(400)
    except GatewayError as exc:
        if exc.status == 404:
            raise
        return render_licenses(subscription_id, status=exc.status, notice=exc.message)
    return redirect(url_for("web_billing.licenses_page", subscription_id=subscription_id))


# -- corporate portal quotes -----------------------------------------------------------------
@bp.get("/portal-quotes")
@signed_in
def portal_quotes(status=200, notice=None, errors=None):
    db = db_session()
    shown = []
    for a in my_accounts():
        found = portal.list_quotes(db, a["account_id"])
        for q in found:
            for item in q["items"]:
                item["names"] = catalog_names(item["product"])
        shown.append({"account": accounts.read(db, a["account_id"]), "quotes": found,
                      "billing": "billing_contact" in a["roles"], "ask": whom_to_ask(a["account_id"])})
    return render_template("portal_quotes.html", accounts=shown, notice=notice,
                           errors=errors or {}), status


@bp.post("/portal-quotes/<quote_id>")
@signed_in
def portal_quote_act(quote_id):
    form = request.form
    try:
        if form.get("action") == "accept":
            po = form.get("po_number", "").strip()
            errors = _po_errors(po)
            if errors:
                return portal_quotes(status=422, errors={quote_id: errors})
            portal.decide_quote(for_request(), quote_id, accept=True, po_number=po or None)
        elif form.get("action") == "reject":
            note = form.get("note", "").strip()[:2000] or None
            portal.decide_quote(for_request(), quote_id, accept=False, note=note)
        else:
            abort(400)
    except GatewayError as exc:
        if exc.status == 404:
            raise
        errors = {quote_id: exc.extra.get("errors") or {"_schema": [exc.message]}}
        return portal_quotes(status=exc.status, notice=exc.message, errors=errors)
    return redirect(url_for("web_billing.portal_quotes"))


def _po_errors(po: str) -> dict:
    """The API's own rule for a PO number (1-64 printable characters), at the field."""
    if not po:
        return {}
    try:
        AcceptIn().load({"po_number": po})
    except ma.ValidationError as exc:
        return exc.messages
    return {}
