"""People in the order flow over HTTP (design.md §3.7, §3.8), on SQLite and PostgreSQL: withdraw,
purchase-order numbers, the advisor's case page and pool rules, and what billing contacts are
told, read back from the mail folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.errors import TransientAdapterError
from adapters.models import OutboxMessage
from tests.conftest import Http, TestIssuer, make_world, service_token

CARD = {"token": "pm_people", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099}


@dataclass
class People:
    app: object
    admin: Http
    ada_id: str
    ada: Http
    bob: Http
    eve: Http
    corp: object
    solo: object


def _advisor(admin, staff, subject, name, pool="corporate-account-services"):
    r = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": subject, "name": name,
                                             "email": f"{subject}@vendor.example", "pool": pool})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"], admin.as_(staff.token(subject))


@pytest.fixture
def people(any_app):
    admin = Http(any_app.test_client(), service_token(any_app))
    staff = TestIssuer.new("staff")
    assert admin.post("/api/v1/staff-issuers", json=staff.spec()).status_code == 201
    ada_id, ada = _advisor(admin, staff, "ada", "Ada Advisor")
    _, bob = _advisor(admin, staff, "bob", "Bob Pool")
    _, eve = _advisor(admin, staff, "eve", "Eve Elsewhere", pool="other-pool")
    corp = make_world(admin, TestIssuer.new(), "corp", country="FR", channel="corporate",
                      terms="invoice", vat_number="FR40303265045", plan="business",
                      start="2026-01-01", advisor_id=ada_id)
    # the corporate billing contact reads French
    r = admin.post(f"/api/v1/accounts/{corp.account_id}/contacts", json={
        "subject": "billing@corp", "name": "Camille Corp", "email": "billing.corp@x.example",
        "roles": ["billing_contact"], "locale": "fr"})
    assert r.status_code == 201 and r.get_json()["locale"] == "fr", r.get_json()
    solo = make_world(admin, TestIssuer.new(), "solo", country="US", currency="USD",
                      start="2026-01-01")
    assert solo.billing.put(f"/api/v1/accounts/{solo.account_id}/payment-method",
                            json=CARD).status_code == 200
    return People(any_app, admin, ada_id, ada, bob, eve, corp, solo)


def order(w, item, key):
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json={"items": [item]},
                       headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def settle(p):
    assert p.app.extensions["gateway.queue"].wait_idle(20)


def mails(p, to=None):
    settle(p)
    out = []
    for path in sorted(Path(p.app.config["MAIL_DIR"]).glob("*.eml")):
        m = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if to is None or m["To"] == to:
            out.append((m["Subject"], m.get_content()))
    return out


def case_of(http, order_id):
    return next(c for c in http.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order_id)


def event_types(p):
    return [e["type"] for e in p.admin.get("/api/v1/events?limit=200").get_json()]


# -- withdraw ------------------------------------------------------------------------------------
def test_withdraw_an_order_waiting_for_an_advisor(people):
    p = people
    placed = order(p.corp, {"subscription_id": p.corp.subscription_id, "billing_period": "annual"}, "w1")
    assert placed["status"] == "awaiting_advisor"
    case = case_of(p.ada, placed["id"])
    assert p.ada.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200
    r = p.corp.billing.post(f"/api/v1/orders/{placed['id']}/withdraw")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "withdrawn"
    assert [i["status"] for i in r.get_json()["items"]] == ["withdrawn"]
    assert "order.withdrawn" in event_types(p)
    assert p.ada.get(f"/api/v1/advisor/cases/{case['id']}").get_json()["status"] == "withdrawn"
    assert [c["id"] for c in p.ada.get("/api/v1/advisor/cases?status=withdrawn").get_json()] == [case["id"]]
    # forbidden afterwards: approve the withdrawn case, withdraw again; nothing changes
    r = p.ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve"})
    assert (r.status_code, r.get_json()["error"]) == (409, "case_withdrawn")
    r = p.corp.billing.post(f"/api/v1/orders/{placed['id']}/withdraw")
    assert (r.status_code, r.get_json()["error"]) == (409, "order_not_withdrawable")
    sub = p.corp.billing.get(f"/api/v1/subscriptions/{p.corp.subscription_id}").get_json()
    assert sub["billing_period"] == "monthly"
    # the advisor holding the case, and the contacts, in their languages
    assert any(placed["id"] in body and "withdrew" in body
               for _, body in mails(p, "ada@vendor.example"))
    french = [s for s, _ in mails(p, "billing.corp@x.example")]
    assert any("a été retirée" in s for s in french), french


def test_withdraw_a_portal_quote(people):
    p = people
    placed = order(p.corp, {"subscription_id": p.corp.subscription_id, "licenses": 12}, "w2")
    assert placed["status"] == "awaiting_acceptance"
    quote = p.corp.billing.get(f"/api/v1/accounts/{p.corp.account_id}/portal-quotes").get_json()[0]
    assert p.admin.post(f"/api/v1/orders/{placed['id']}/withdraw").status_code == 200  # `billing`
    quote = p.corp.billing.get(f"/api/v1/accounts/{p.corp.account_id}/portal-quotes").get_json()[0]
    assert quote["status"] == "withdrawn"
    r = p.corp.billing.post(f"/api/v1/portal-quotes/{quote['id']}/accept")
    assert (r.status_code, r.get_json()["error"]) == (409, "quote_closed")
    assert p.corp.billing.get(f"/api/v1/orders/{placed['id']}").get_json()["status"] == "withdrawn"


def test_withdraw_refusals(people):
    p = people
    done = order(p.solo, {"subscription_id": p.solo.subscription_id, "licenses": 6}, "w3")
    settle(p)
    assert p.solo.billing.get(f"/api/v1/orders/{done['id']}").get_json()["status"] == "completed"
    r = p.solo.billing.post(f"/api/v1/orders/{done['id']}/withdraw")
    assert (r.status_code, r.get_json()["error"]) == (409, "order_not_withdrawable")
    waiting = order(p.solo, {"subscription_id": p.solo.subscription_id, "plan": "lite"}, "w4")
    assert waiting["status"] == "awaiting_advisor"
    r = p.solo.member.post(f"/api/v1/orders/{waiting['id']}/withdraw")
    assert (r.status_code, r.get_json()["error"]) == (403, "not_billing_contact")
    assert p.corp.billing.post(f"/api/v1/orders/{waiting['id']}/withdraw").status_code == 404
    assert p.ada.post(f"/api/v1/orders/{waiting['id']}/withdraw").status_code == 404
    r = p.solo.billing.post(f"/api/v1/orders/{waiting['id']}/withdraw", json={"why": "x"})
    assert r.status_code == 422
    assert p.solo.billing.get(f"/api/v1/orders/{waiting['id']}").get_json()["status"] == "awaiting_advisor"


# -- purchase-order numbers ----------------------------------------------------------------------
def test_po_number_on_acceptance(people):
    p = people
    assert p.admin.patch(f"/api/v1/tenants/{p.corp.tenant_id}",
                         json={"policy": {"require_po_number": True}}).status_code == 200
    placed = order(p.corp, {"subscription_id": p.corp.subscription_id, "licenses": 12}, "po")
    quote = p.corp.billing.get(f"/api/v1/accounts/{p.corp.account_id}/portal-quotes").get_json()[0]
    url = f"/api/v1/portal-quotes/{quote['id']}/accept"
    r = p.corp.billing.post(url)
    assert (r.status_code, r.get_json()["error"]) == (422, "po_number_required")
    for bad in ("", "x" * 65, "PO\n1", 4711):
        assert p.corp.billing.post(url, json={"po_number": bad}).status_code == 422, bad
    assert p.corp.billing.get(f"/api/v1/orders/{placed['id']}").get_json()["status"] == "awaiting_acceptance"
    r = p.corp.billing.post(url, json={"po_number": "PO-2026/0042"})
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    done = p.corp.billing.get(f"/api/v1/orders/{placed['id']}").get_json()
    assert (done["status"], done["po_number"]) == ("completed", "PO-2026/0042")
    from adapters.models import LedgerEntry

    with p.app.app_context():
        db = p.app.extensions["gateway.db"].sessionmaker()
        assert db.scalar(select(LedgerEntry.po_number).where(LedgerEntry.order_id == placed["id"])) \
            == "PO-2026/0042"
        db.close()
    body = next(b for s, b in mails(p, "billing.corp@x.example") if "terminée" in s)
    assert "PO-2026/0042" in body


# -- advisors ----------------------------------------------------------------------------------
def test_the_case_page_shows_everything_the_decision_needs(people):
    p = people
    placed = order(p.corp, {"subscription_id": p.corp.subscription_id, "billing_period": "annual",
                            "licenses": 4}, "detail")
    case = case_of(p.ada, placed["id"])
    assert p.ada.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200
    assert p.ada.post(f"/api/v1/advisor/cases/{case['id']}/notes",
                      json={"note": "Called the buyer"}).status_code == 201
    assert p.ada.post(f"/api/v1/advisor/cases/{case['id']}/release").status_code == 200
    r = p.ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve",
                   json={"decision": "reject", "note": "At renewal"})
    assert r.status_code == 200
    d = p.ada.get(f"/api/v1/advisor/cases/{case['id']}").get_json()
    a = d["account"]
    assert (a["id"], a["country"], a["segment"], a["vat_number"], a["vat_status"],
            a["credit_balance"], a["payment_method"]) == (
        p.corp.account_id, "FR", "enterprise", "FR40303265045", "valid", "0.00", None)
    assert a["segment_reasons"] and a["name"]
    assert {"name": "Camille Corp", "email": "billing.corp@x.example"} in d["billing_contacts"]
    item = d["order"]["items"][0]
    assert item["current"] == {"plan": "business", "licenses": 5, "billing_period": "monthly"}
    assert (item["proposed"]["plan"], item["proposed"]["licenses"], item["proposed"]["billing_period"]) \
        == ("business", 4, "annual")
    assert {"credit", "charge"} <= set(item)
    assert {"net", "balance_applied", "credit_added", "tax", "total_due", "currency"} <= set(d["order"])
    assert d["route_reason"] == placed["route"]["reason"]
    assert [h["action"] for h in d["history"]] == ["opened", "claimed", "noted", "released", "claimed",
                                                   "decided"]
    assert d["history"][2]["note"] == "Called the buyer" and d["history"][2]["actor"] == "Ada Advisor"
    assert "At renewal" in d["history"][-1]["note"]
    # the account and order of a case the advisor sees; nothing else
    assert p.ada.get(f"/api/v1/orders/{placed['id']}").status_code == 200
    assert p.ada.get(f"/api/v1/accounts/{p.corp.account_id}").get_json()["id"] == p.corp.account_id
    assert p.ada.get(f"/api/v1/accounts/{p.solo.account_id}").status_code == 404
    assert p.eve.get(f"/api/v1/advisor/cases/{case['id']}").status_code == 404
    assert p.eve.get(f"/api/v1/orders/{placed['id']}").status_code == 404
    assert p.eve.get(f"/api/v1/accounts/{p.corp.account_id}").status_code == 404
    # the contacts were told, with the note, in French
    rejected = [b for s, b in mails(p, "billing.corp@x.example") if "pas été acceptée" in s]
    assert rejected and "At renewal" in rejected[0]


def test_the_pool_sees_a_dedicated_advisors_case_and_takes_it_once_overdue(people):
    p = people
    placed = order(p.corp, {"subscription_id": p.corp.subscription_id, "licenses": 3}, "pool")
    case = case_of(p.bob, placed["id"])
    assert case["assigned_advisor_id"] == p.ada_id
    r = p.bob.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert (r.status_code, r.get_json()["error"]) == (409, "case_assigned")
    from datetime import timedelta

    from adapters.models import AdvisorCase
    from tenants.db import utcnow

    with p.app.app_context():
        db = p.app.extensions["gateway.db"].sessionmaker()
        db.get(AdvisorCase, case["id"]).due_at = utcnow() - timedelta(minutes=1)
        db.commit()
        db.close()
    r = p.bob.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert r.status_code == 200 and r.get_json()["status"] == "claimed"
    r = p.ada.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert (r.status_code, r.get_json()["error"]) == (409, "case_claimed")
    r = p.ada.post(f"/api/v1/advisor/cases/{case['id']}/release")
    assert (r.status_code, r.get_json()["error"]) == (409, "case_not_claimed")
    r = p.bob.post(f"/api/v1/advisor/cases/{case['id']}/release")
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["claimed_by"]) == ("open", None)
    assert p.ada.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200


# -- what billing contacts are told --------------------------------------------------------------
def test_contacts_are_told_each_step_in_their_language(people):
    p = people
    # self-serve, English: completed with names, no -0.00, and the licenses to assign
    done = order(p.solo, {"subscription_id": p.solo.subscription_id, "plan": "business",
                          "licenses": 8}, "m1")
    settle(p)
    subject, body = next((s, b) for s, b in mails(p, "billing.solo@x.example") if done["id"] in s)
    assert "complete" in subject
    assert "Webinar: Business, 8 licenses" in body and "webinar:" not in body
    assert "-0.00" not in body and "$0.00" in body
    assert "Assign 3 new licenses of Webinar (8 unassigned in all)" in body
    assert f"/subscriptions/{p.solo.subscription_id}/licenses\n" in body  # the page
    assert f"/api/v1/subscriptions/{p.solo.subscription_id}/licenses" in body
    assert mails(p, "member.solo@x.example") == []  # not a billing contact
    # waiting for an advisor: who and by when
    waiting = order(p.solo, {"subscription_id": p.solo.subscription_id, "plan": "lite"}, "m2")
    body = next(b for s, b in mails(p, "billing.solo@x.example") if waiting["id"] in s)
    assert "Corporate Account Services" in body and "Answer due by" in body
    # enterprise, French: the quote waits for acceptance; the dedicated advisor by name
    quoted = order(p.corp, {"subscription_id": p.corp.subscription_id, "licenses": 9}, "m3")
    subject, body = next((s, b) for s, b in mails(p, "billing.corp@x.example") if quoted["id"] in s)
    assert "devis" in subject and "Webinar : Business, 9 licences" in body
    assert "€" in body and "," in body.split("Total à payer : ")[1].split("\n")[0]
    p.corp.billing.post(f"/api/v1/orders/{quoted['id']}/withdraw")
    switch = order(p.corp, {"subscription_id": p.corp.subscription_id, "billing_period": "annual"}, "m4")
    subject, body = next((s, b) for s, b in mails(p, "billing.corp@x.example") if switch["id"] in s)
    assert "attend la décision de Ada Advisor" in subject
    assert "Ada Advisor" in body and "Réponse attendue avant le" in body
    # the advisor keeps the "new case" mail
    assert any("New case" in s for s, _ in mails(p, "ada@vendor.example"))


class _DownOnce:
    """A mail server that refuses the first message, then takes every one."""

    def __init__(self, real):
        self.real, self.refused = real, 0

    def send(self, to, subject, body):
        if not self.refused:
            self.refused += 1
            raise TransientAdapterError("mail server down", system="notifications")
        self.real.send(to, subject, body)


def test_the_completion_mail_goes_out_from_the_apply_job_or_else_through_the_queue(people, caplog):
    """The apply job tells the contacts itself (no second job); when the mail cannot go out
    then, the outbox message is given back and the queue sends it, with its retries, once."""
    p = people
    caplog.set_level(logging.WARNING, logger="gateway.orders.jobs")
    held = p.app.extensions["gateway.notifier"]
    p.app.extensions["gateway.notifier"] = down = _DownOnce(held)
    done = order(p.solo, {"subscription_id": p.solo.subscription_id, "licenses": 7}, "mail-1")
    settle(p)
    assert down.refused == 1
    assert "the completion mail goes through the queue instead" in caplog.text  # tried in the job
    assert len([s for s, _ in mails(p, "billing.solo@x.example") if done["id"] in s]) == 1
    db = p.app.extensions["gateway.db"].sessionmaker()
    try:
        notes = db.scalars(select(OutboxMessage).where(
            OutboxMessage.job == "gateway.orders.jobs.notify_order")).all()
        assert [n.dispatched_at is not None for n in notes] == [True]
    finally:
        db.close()


def test_a_completion_mail_that_cannot_be_read_does_not_undo_the_order(people, caplog,
                                                                       monkeypatch):
    """The apply job reads what the mail needs in its own transaction: a failure there (not the
    database's) still commits the order, and the queue sends the mail."""
    from gateway.orders import mail

    p = people
    caplog.set_level(logging.WARNING, logger="gateway.orders.jobs")
    real, failed = mail.read, []

    def read_once(db, order, step, **kw):
        if step == "completed" and not failed:
            failed.append(order.id)
            raise KeyError("a catalog name went missing")
        return real(db, order, step, **kw)

    monkeypatch.setattr(mail, "read", read_once)
    done = order(p.solo, {"subscription_id": p.solo.subscription_id, "licenses": 8}, "mail-read")
    settle(p)
    assert failed == [done["id"]] and "the completion mail could not be read" in caplog.text
    assert p.solo.billing.get(f"/api/v1/orders/{done['id']}").get_json()["status"] == "completed"
    assert len([s for s, _ in mails(p, "billing.solo@x.example") if done["id"] in s]) == 1


def test_the_tenants_default_language_and_a_contacts_own(people):
    p = people
    assert p.admin.patch(f"/api/v1/tenants/{p.solo.tenant_id}",
                         json={"policy": {"locale": "fr"}}).get_json()["policy"]["locale"] == "fr"
    placed = order(p.solo, {"subscription_id": p.solo.subscription_id, "plan": "lite"}, "l1")
    subject = next(s for s, _ in mails(p, "billing.solo@x.example") if placed["id"] in s)
    assert "attend la décision" in subject
    r = p.admin.post(f"/api/v1/accounts/{p.solo.account_id}/contacts", json={
        "subject": "billing@solo", "name": "billing@solo", "email": "billing.solo@x.example",
        "roles": ["billing_contact"], "locale": "en"})
    assert r.status_code == 201 and r.get_json()["locale"] == "en"
    assert p.solo.billing.post(f"/api/v1/orders/{placed['id']}/withdraw").status_code == 200
    subject = next(s for s, _ in mails(p, "billing.solo@x.example") if "withdrawn" in s)
    assert placed["id"] in subject
    r = p.admin.post(f"/api/v1/accounts/{p.solo.account_id}/contacts", json={
        "subject": "x", "name": "x", "email": "x@x.example", "roles": ["user"], "locale": "de"})
    assert r.status_code == 422


# -- §3.3 amended, and prices the admin API refuses ------------------------------------------------
def test_a_card_account_without_a_card_cannot_be_charged_for_a_cheaper_rate(people):
    p = people
    w = make_world(p.admin, TestIssuer.new(), "annual", country="US", currency="USD",
                   plan="business", licenses=3, start="2026-01-01")
    q = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                       json={"billing_period": "annual"}).get_json()
    assert q["rate_increase"] is False and q["total_due"] != "0.00"
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]
    assert q["next_action"] == "provide_requirements"
    body = {"items": [{"subscription_id": w.subscription_id, "billing_period": "annual"}]}
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                       headers={"Idempotency-Key": "annual"})
    assert (r.status_code, r.get_json()["error"]) == (409, "requirements_outstanding")
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}/orders").get_json() == []
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=CARD).status_code == 200
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                       headers={"Idempotency-Key": "annual"})
    assert r.status_code == 201, r.get_json()


def test_the_admin_api_refuses_a_subscription_no_quote_could_price(people):
    p = people
    r = p.admin.post(f"/api/v1/accounts/{p.solo.account_id}/subscriptions", json={
        "product": "webinar", "plan": "lite", "licenses": 2, "billing_period": "annual",
        "status": "active", "current_period_start": "2026-02-01"})  # no USD annual lite price
    assert (r.status_code, r.get_json()["error"]) == (422, "price_unavailable")
    assert len(p.admin.get(f"/api/v1/accounts/{p.solo.account_id}/subscriptions").get_json()) == 1
