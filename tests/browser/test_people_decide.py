"""Where a person decides: a downgrade reaches the advisors' pool and Victor rejects it; Gina
accepts a corporate portal quote with a purchase-order number."""

from __future__ import annotations

from tests.browser.test_stories import ALICE, GINA, VICTOR, acme_subscription, api


def test_a_downgrade_goes_to_the_pool_victor_rejects_it_and_alice_reads_the_note(browser):
    b, live = browser, browser.live
    b.sign_in(ALICE)
    sub = acme_subscription(live)
    b.open(f"/subscriptions/{sub}/modify?plan=lite&licenses=5&billing_period=monthly")
    promised = b.text("#route-note")
    assert "Corporate Account Services" in promised and "who answers by" in promised
    b.click_and_load("#place-order")
    order_path = b.path()
    assert "waiting for an advisor" in b.text("h1")
    assert "Corporate Account Services" in b.text("#handler-note")
    # The day promised before placing is the case's (the time differs by the seconds between).
    day = b.text("#handler-note").split(" by ", 1)[1].rsplit(",", 1)[0]
    assert day in promised, (day, promised)
    b.sign_out()

    b.sign_in(VICTOR, staff=True)
    assert b.path() == "/advisor"
    b.click_and_load("#pool tr[data-case] a")
    quote_total = b.find("#total-due").get_attribute("data-amount")
    assert quote_total and "Acme GmbH" in b.text("#account-name")
    b.click_and_load("#claim")
    assert "Victor Advisor" in b.text("#claim-note")
    b.type("#note", "Lite lacks webinars over 100 people; let us talk first.")
    b.click_and_load("#reject")
    assert "let us talk first" in b.text("#decision")
    b.sign_out()

    b.sign_in(ALICE)
    b.open(order_path)
    assert "rejected" in b.text("h1")
    assert "let us talk first" in b.text("#rejection-note")


def test_gina_accepts_a_portal_quote_with_a_po_number(browser):
    b, live = browser, browser.live
    b.sign_in(GINA, tenant="demo-globex")
    gina = api(live, GINA)
    account = gina.get("/api/v1/me").get_json()["accounts"][0]["account_id"]
    # The demo's order that waits for Victor holds the subscription: Gina withdraws it first.
    waiting = next(o for o in gina.get(f"/api/v1/accounts/{account}/orders").get_json()
                   if o["status"] == "awaiting_advisor")
    b.open(f"/orders/{waiting['id']}")
    b.click_and_load("#withdraw")
    assert "withdrawn" in b.text("h1")
    sub = next(s for s in gina.get(f"/api/v1/accounts/{account}/subscriptions").get_json()
               if s["status"] == "active")
    b.open(f"/subscriptions/{sub['id']}/modify?plan={sub['plan']}&licenses={sub['licenses'] + 10}"
           f"&billing_period={sub['billing_period']}")
    assert "corporate billing portal" in b.text("#route-note")
    b.click_and_load("#place-order")
    assert "waiting for your acceptance" in b.text("h1")
    b.open("/portal-quotes")
    b.type(".accept .po-number", "PO-4711")
    b.click_and_load('.accept button[value="accept"]')
    b.click_and_load("article.quote a[href^='/orders/']")
    b.reload_until("h1", "completed")
    assert b.text("#po-number") == "PO-4711"
