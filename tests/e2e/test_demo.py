"""`make run`'s demo data: seeded twice without harm, and the printed tokens work."""

from __future__ import annotations

import re

from tests.conftest import Http


def test_seed_is_idempotent_and_its_tokens_work(app):
    from gateway import demo

    demo.seed(app)
    text = demo.seed_and_describe(app)
    tokens = dict(re.findall(r"^(\w+_TOKEN)=(\S+)", text, re.M))
    http = Http(app.test_client())
    service = http.as_(tokens["SERVICE_TOKEN"])
    tenants = service.get("/api/v1/tenants").get_json()
    assert sorted(t["name"] for t in tenants) == ["Acme", "Globex"]
    webinar = service.get("/api/v1/catalog/products/webinar").get_json()
    assert [(p["code"], p["rank"]) for p in webinar["plans"]] == [
        ("free", 0), ("lite", 1), ("standard", 2), ("business", 3)]
    assert {(x["currency"], x["billing_period"]) for x in webinar["plans"][1]["prices"]} == {
        (c, b) for c in ("EUR", "USD", "GBP") for b in ("monthly", "annual")}

    me = http.as_(tokens["CONTACT_TOKEN"]).get("/api/v1/me").get_json()
    assert me["kind"] == "contact" and me["accounts"][0]["roles"] == ["billing_contact", "user"]
    account = http.as_(tokens["CONTACT_TOKEN"]).get(f"/api/v1/accounts/{me['accounts'][0]['account_id']}")
    assert (account.get_json()["country"], account.get_json()["segment"]) == ("DE", "self_serve")
    advisor = http.as_(tokens["ADVISOR_TOKEN"]).get("/api/v1/me").get_json()
    assert advisor["kind"] == "advisor"
    globex = next(t for t in tenants if t["name"] == "Globex")
    corp = service.get(f"/api/v1/tenants/{globex['id']}/accounts").get_json()[0]
    assert (corp["country"], corp["segment"]) == ("FR", "enterprise")
    assert corp["advisor_id"] == advisor["advisor"]["id"]

    quote_path = re.search(r"http://[\d.:]+(/api/v1/subscriptions/\S+/quotes)", text).group(1)
    quote = http.as_(tokens["CONTACT_TOKEN"]).post(quote_path, json={"plan": "business", "licenses": 8})
    assert quote.status_code == 200 and quote.get_json()["changes"] == ["plan_upgrade", "licenses_added"]


def test_the_demo_tells_every_story(app):
    from sqlalchemy import func, select

    from adapters.models import AdvisorCase
    from gateway import demo
    from gateway.orders.models import Order
    from tenants.models import Account, Advisor, Contact

    demo.seed(app)
    with app.app_context():  # `flask` pushes one for every command
        result = app.test_cli_runner().invoke(args=["seed", "--port", "8101"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "http://127.0.0.1:8101/docs" in text and ":8000" not in text
    assert "flask --app wsgi dev-token SUBJECT" in text
    tokens = dict(re.findall(r"^(\w+_TOKEN)=(\S+)", text, re.M))
    http = Http(app.test_client())
    # seeded twice: one of each
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        counts = [db.scalar(select(func.count()).select_from(m)) for m in (
            Account, Contact, Advisor, Order, AdvisorCase)]
        db.close()
    assert counts == [3, 4, 2, 1, 1]  # Alice, Gina, Uma, Lars; Victor, Paula
    # Gina's order waits for Victor; Paula (the pool) sees it, and may take it once overdue
    gina = http.as_(tokens["GLOBEX_CONTACT_TOKEN"])
    account_id = gina.get("/api/v1/me").get_json()["accounts"][0]["account_id"]
    orders = gina.get(f"/api/v1/accounts/{account_id}/orders").get_json()
    assert [o["status"] for o in orders] == ["awaiting_advisor"]
    paula = http.as_(tokens["POOL_ADVISOR_TOKEN"])
    case = next(c for c in paula.get("/api/v1/advisor/cases").get_json() if c["order_id"] == orders[0]["id"])
    assert paula.post(f"/api/v1/advisor/cases/{case['id']}/claim").get_json()["error"] == "case_assigned"
    victor = http.as_(tokens["ADVISOR_TOKEN"])
    assert victor.get(f"/api/v1/advisor/cases/{case['id']}").get_json()["order"]["id"] == orders[0]["id"]
    # Uma reads but may not change; Lars's trial ended: subscribe now
    uma = http.as_(tokens["USER_CONTACT_TOKEN"])
    acme = uma.get("/api/v1/me").get_json()["accounts"][0]
    assert acme["roles"] == ["user"]
    sub = uma.get(f"/api/v1/accounts/{acme['account_id']}/subscriptions").get_json()[0]
    r = uma.post(f"/api/v1/subscriptions/{sub['id']}/quotes", json={"licenses": 8})
    assert (r.status_code, r.get_json()["error"]) == (403, "not_billing_contact")
    lars = http.as_(tokens["TRIAL_CONTACT_TOKEN"])
    labs = lars.get("/api/v1/me").get_json()["accounts"][0]["account_id"]
    trial = lars.get(f"/api/v1/accounts/{labs}/subscriptions").get_json()[0]
    assert (trial["plan"], trial["status"]) == ("free", "expired")
    r = lars.post(f"/api/v1/subscriptions/{trial['id']}/quotes", json={"plan": "standard"})
    assert (r.status_code, r.get_json()["next_action"]) == (409, "subscribe_now")
