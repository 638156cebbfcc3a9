"""The advisors' console: the queue (mine, my pool; overdue first), a case with everything the
decision needs, and claim / release / approve / reject."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from sqlalchemy import select

from gateway.composition import for_request
from gateway.database import session as db_session
from gateway.errors import GatewayError
from gateway.services import advisors
from gateway.web import pages, people
from gateway.web.billing import catalog_names
from tenants.db import utcnow
from tenants.models import Account, Advisor

bp = pages.blueprint("web_advisor", __name__, url_prefix="/advisor")
signed_in = people.required("advisor")
STATUSES = ("open", "claimed", "resolved")


def _names(ids) -> dict:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db_session().execute(select(Advisor.id, Advisor.name).where(Advisor.id.in_(ids))).all())


@bp.get("")
@signed_in
def queue():
    status = request.args.get("status")
    status = status if status in STATUSES else None
    me = g.principal.advisor
    cases = advisors.list_cases(for_request(), status)
    now = utcnow()
    for c in cases:
        c["overdue"] = c["status"] != "resolved" and c["due_at"] < now
        c["mine"] = c["assigned_advisor_id"] == me.id or c["claimed_by"] == me.id
    cases.sort(key=lambda c: (not c["overdue"], c["due_at"]))
    names = _names([c["assigned_advisor_id"] for c in cases] + [c["claimed_by"] for c in cases])
    account_ids = {c["account_id"] for c in cases}
    accounts = dict(db_session().execute(select(Account.id, Account.name)
                                         .where(Account.id.in_(account_ids))).all()) if account_ids else {}
    return render_template("advisor_queue.html", mine=[c for c in cases if c["mine"]],
                           pool=[c for c in cases if not c["mine"]], status=status,
                           statuses=STATUSES, names=names, accounts=accounts, me=me)


def render_case(case_id: str, *, status=200, notice=None):
    detail = advisors.read_case(for_request(), case_id)
    for item in (detail.get("order") or {}).get("items", []):
        item["names"] = catalog_names(item["product"])
    names = _names([detail.get("assigned_advisor_id"), detail.get("claimed_by")])
    me = g.principal.advisor
    live_claim = detail.get("claimed_by")
    return render_template("advisor_case.html", case=detail, names=names, me=me,
                           held_by_other=live_claim not in (None, me.id), notice=notice), status


@bp.get("/cases/<case_id>")
@signed_in
def case(case_id):
    return render_case(case_id)


@bp.post("/cases/<case_id>")
@signed_in
def case_act(case_id):
    deps = for_request()
    action = request.form.get("action")
    try:
        if action == "claim":
            advisors.claim(deps, case_id)
        elif action == "release":
            advisors.release(deps, case_id)
        elif action in ("approve", "reject"):
            note = request.form.get("note", "").strip()[:2000] or None
            advisors.resolve(deps, case_id, action, note)
        else:
            abort(400)
    except GatewayError as exc:
        if exc.status == 404:
            raise
        deps.db.rollback()
        return render_case(case_id, status=exc.status, notice=exc.message)
    return redirect(url_for("web_advisor.case", case_id=case_id))
