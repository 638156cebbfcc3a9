"""The stories of design.md §6 in a real browser (chromium, headless), against a served gateway
with the demo data: Alice (Acme, self-serve), Victor (advisor), Gina (Globex, enterprise)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

from gateway import demo
from tests.conftest import Http

ALICE, GINA, VICTOR = "alice@acme.example", "gina@globex.example", "victor@advisors.example"


def api(live, subject: str) -> Http:
    return Http(live.app.test_client(), demo.dev_token(live.app, subject))


def acme_subscription(live) -> str:
    me = api(live, ALICE)
    account = me.get("/api/v1/me").get_json()["accounts"][0]["account_id"]
    subs = me.get(f"/api/v1/accounts/{account}/subscriptions").get_json()
    return next(s["id"] for s in subs if s["status"] == "active")


def shown_amounts(b) -> dict:
    return {row.get_attribute("data-line-type"): row.find_element("css selector", "td")
            for row in b.all("#summary [data-line-type]")}


def test_alice_upgrades_gives_her_vat_number_places_the_order_and_assigns_a_license(browser):
    b, live = browser, browser.live
    b.sign_in(ALICE)
    assert "Acme GmbH" in b.text("main")
    sub = acme_subscription(live)
    b.click_and_load(f'[data-subscription="{sub}"] a.button[href$="/modify"]')
    b.choose("#plan", "business")
    b.type("#licenses", "8")
    b.click_and_load("#update-summary")
    b.find("#total-due")

    # The summary is the API's quote, line by line, to the cent.
    quote = api(live, ALICE).post(f"/api/v1/subscriptions/{sub}/quotes",
                                  json={"plan": "business", "licenses": 8}).get_json()
    shown = shown_amounts(b)
    expected = {line["type"]: line["amount"] for line in quote["lines"]}
    expected.update(balance_applied=quote["balance_applied"], tax=quote["tax"]["amount"],
                    total_due=quote["total_due"])
    for kind, amount in expected.items():
        cell = shown[kind]
        assert Decimal(cell.get_attribute("data-amount")) == Decimal(amount), kind
        assert cell.text == format_currency(Decimal(amount), "EUR", locale="en"), kind
    assert "Dec" in b.text("#new-period") or b.text("#new-period")

    # Asked for payment details (a token from the widget) and the VAT number, in place.
    assert b.find("#place-order").get_attribute("disabled") is not None
    b.click_and_load("#prompt-payment a")
    b.type("#card_number", "4242 4242 4242 4242")
    b.type("#exp_month", "12")
    b.type("#exp_year", "2030")
    b.click_and_load("#tokenize")
    b.click_and_load("#use-card")
    assert b.find("#prompt-vat") and not b.all("#prompt-payment")
    b.type("#vat_number", "DE123")
    b.click_and_load("#prompt-vat button")
    assert b.text("#vat_number-error")  # the error at the field
    b.type("#vat_number", "DE136695976")
    b.click_and_load("#prompt-vat button")
    assert not b.all("#prompt-vat")
    # A German business with a VAT number buys from Ireland under reverse charge: no VAT.
    quote = api(live, ALICE).post(f"/api/v1/subscriptions/{sub}/quotes",
                                  json={"plan": "business", "licenses": 8}).get_json()
    assert quote["tax"]["treatment"] == "reverse_charge"
    assert Decimal(b.find("#total-due").get_attribute("data-amount")) == Decimal(quote["total_due"])

    b.click_and_load("#place-order")
    assert b.path().startswith("/orders/")
    b.reload_until("h1", "completed")
    assert b.text("#total-due") == format_currency(Decimal(quote["total_due"]), "EUR", locale="en")

    b.click_and_load("#assign-licenses")
    b.click_and_load("tr[data-user] button[value=assign]")
    assert "1 of 8 licenses assigned" in b.text("#seat-count")


def test_the_cart_flow(browser):
    b, live = browser, browser.live
    b.sign_in(ALICE)
    sub = acme_subscription(live)
    b.open(f"/subscriptions/{sub}/modify?plan=standard&licenses=3&billing_period=monthly")
    b.click_and_load("#add-to-cart-instead")
    assert b.path().startswith("/cart")
    assert len(b.all(".cart-item")) == 1
    # With items in the cart, a change offers "Add to cart" instead of "Place order".
    b.open(f"/subscriptions/{sub}/modify?plan=standard&licenses=4&billing_period=monthly")
    assert b.find("#add-to-cart") and not b.all("#place-order")
    b.open("/cart")
    b.type('.cart-item input[name="licenses"]', "4")
    b.click_and_load('.cart-item button[value="edit"]')
    assert b.find('.cart-item input[name="licenses"]').get_attribute("value") == "4"
    cart = api(live, ALICE).get(f"/api/v1/accounts/{_account(live)}/cart").get_json()
    assert Decimal(b.find("#total-due").get_attribute("data-amount")) == Decimal(cart["quote"]["total_due"])
    # Something to charge and no card on file: the cart asks for payment details first.
    assert b.find("#place-cart").get_attribute("disabled") is not None
    b.click_and_load("#prompt-payment a")
    b.type("#card_number", "5555 5555 5555 4444")
    b.type("#exp_month", "6")
    b.type("#exp_year", "2031")
    b.click_and_load("#tokenize")
    b.click_and_load("#use-card")
    assert b.path().startswith("/cart")
    b.click_and_load("#place-cart")
    b.reload_until("h1", "completed")
    b.open("/cart")
    assert b.find("#cart-empty")


def _account(live) -> str:
    return api(live, ALICE).get("/api/v1/me").get_json()["accounts"][0]["account_id"]


def test_a_user_role_contact_sees_whom_to_ask(browser):
    b, live = browser, browser.live
    subject = demo_user_contact(live)
    b.sign_in(subject)
    assert "Only billing contacts can change this subscription" in b.text("#whom-to-ask")
    assert "Alice Acme <alice@acme.example>" in b.text("#whom-to-ask")
    assert not b.all('a[href$="/modify"]')
    sub = acme_subscription(live)
    b.open(f"/subscriptions/{sub}/modify")
    assert "Alice Acme" in b.text("#whom-to-ask") and not b.all("#place-order")


def demo_user_contact(live) -> str:
    """The demo's contact with the user role only on Acme's account."""
    from sqlalchemy import select

    from tenants.models import Contact, Membership

    db = live.app.extensions["gateway.db"].sessionmaker()
    try:
        rows = db.execute(select(Contact.subject, Membership.roles)
                          .join(Membership, Membership.contact_id == Contact.id)).all()
        found = [s for s, roles in rows if "billing_contact" not in (roles or ())]
        if found:
            return found[0]
        from gateway.services import admin
        from tenants.models import Account

        with live.app.app_context():
            account = db.scalar(select(Account).where(Account.name == "Acme GmbH"))
            admin.create_contact(db, account, {"subject": "uma@acme.example", "name": "Uma User",
                                               "email": "uma@acme.example", "roles": ["user"]})
        return "uma@acme.example"
    finally:
        db.close()


def test_the_walk_in_french(browser):
    b, live = browser, browser.live
    b.sign_in(ALICE)
    b.switch_language("fr")
    assert b.find("html").get_attribute("lang") == "fr"
    assert "Mes abonnements" in b.text("h1")
    sub = acme_subscription(live)
    b.open(f"/subscriptions/{sub}/modify?plan=business&licenses=8&billing_period=monthly")
    assert "Récapitulatif des commandes" in b.text("#summary h2")
    quote = api(live, ALICE).post(f"/api/v1/subscriptions/{sub}/quotes",
                                  json={"plan": "business", "licenses": 8}).get_json()
    total = format_currency(Decimal(quote["total_due"]), "EUR", locale="fr")
    assert b.text("#total-due") == total.replace("\xa0", " ")  # 339,54 € (Selenium shows nbsp as a space)
    assert "numéro de TVA" in b.text("#prompt-vat")
    # The summary follows the form as it changes (htmx), without a click.
    b.type("#licenses", "9")
    b.wait_for(lambda: b.text("#new-licenses") == "9", "the summary did not follow the form")
    quote = api(live, ALICE).post(f"/api/v1/subscriptions/{sub}/quotes",
                                  json={"plan": "business", "licenses": 9}).get_json()
    assert Decimal(b.find("#total-due").get_attribute("data-amount")) == Decimal(quote["total_due"])
    assert b.text("#add-to-cart-instead") == "Ajouter au panier"
    b.open("/cart")
    assert "Votre panier est vide." in b.text("main")
