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
