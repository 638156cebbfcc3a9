"""The people's pages over real HTTP (no browser): sign-in and sessions, CSRF, redirects,
tenant isolation, headers, languages and that nothing is loaded from another host."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest

from gateway.web.people import safe_next
from tests.live import LiveGateway

ALICE, GINA, VICTOR = "alice@acme.example", "gina@globex.example", "victor@advisors.example"


@pytest.fixture
def live(db_url, tmp_path):
    gw = LiveGateway.start(db_url, tmp_path)
    yield gw
    gw.stop()


@pytest.fixture
def live_sqlite(sqlite_url, tmp_path):
    gw = LiveGateway.start(sqlite_url, tmp_path)
    yield gw
    gw.stop()


def subscription_ids(page_text: str) -> list[str]:
    return re.findall(r'data-subscription="([^"]+)"', page_text)


def test_sign_in_through_the_development_issuer_and_out_again(live):
    b = live.browser()
    home = b.sign_in(ALICE)
    assert "Acme GmbH" in home.text and subscription_ids(home.text)
    cookie = next(c for c in b.http.cookies if c.name == "gateway_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert not cookie.secure  # development; Secure outside it
    stolen = cookie.value
    b.post("/logout", {})
    assert urlsplit(b.last.url).path == "/login"
    # The old cookie, replayed after sign-out, no longer signs anyone in.
    again = live.browser()
    again.http.cookies.set("gateway_session", stolen, domain="127.0.0.1")
    assert urlsplit(again.get("/").url).path == "/login"


def test_a_new_session_at_each_sign_in(live_sqlite):
    b = live_sqlite.browser()
    b.sign_in(ALICE)
    first = b.http.cookies.get("gateway_session")
    b.sign_in(ALICE)
    assert b.http.cookies.get("gateway_session") != first
    gone = live_sqlite.browser()
    gone.http.cookies.set("gateway_session", first, domain="127.0.0.1")
    assert urlsplit(gone.get("/").url).path == "/login"


def test_session_cookie_never_authorizes_the_api(live_sqlite):
    b = live_sqlite.browser()
    b.sign_in(ALICE)
    r = b.get("/api/v1/me")
    assert r.status_code == 401 and r.json()["error"] == "missing_token"


def test_sessions_expire_after_the_configured_hours(sqlite_url, tmp_path):
    # (With SESSION_HOURS=0 the sign-in itself raced the clock: its form's token lives in a
    # cookie session of that lifetime, valid only within the second it was made.)
    from datetime import timedelta

    from sqlalchemy import select, update

    from gateway.web.models import WebSession
    from tenants.db import utcnow

    gw = LiveGateway.start(sqlite_url, tmp_path, SESSION_HOURS=2)
    try:
        b = gw.browser()
        b.sign_in(ALICE)
        assert urlsplit(b.last.url).path == "/"
        db = gw.app.extensions["gateway.db"].sessionmaker()
        try:
            row = db.scalars(select(WebSession).where(WebSession.ended_at.is_(None))).one()
            lasts = row.expires_at - row.created_at
            assert timedelta(hours=2) - timedelta(minutes=1) < lasts <= timedelta(hours=2)
            # Two hours pass:
            db.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
            db.commit()
        finally:
            db.close()
        assert urlsplit(b.get("/").url).path == "/login"
    finally:
        gw.stop()


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(live_sqlite):
    b = live_sqlite.browser()
    home = b.sign_in(ALICE)
    sub = subscription_ids(home.text)[0]
    page = b.get(f"/subscriptions/{sub}/licenses")
    before = page.text.count("data-user=")
    r = b.post(f"/subscriptions/{sub}/licenses", {"action": "add_user", "name": "Eve",
                                                  "email": "eve@acme.example"}, csrf=False)
    assert r.status_code == 400
    r = b.post(f"/subscriptions/{sub}/licenses", {"action": "add_user", "name": "Eve",
                                                  "email": "eve@acme.example", "csrf_token": "forged"},
               csrf=False)
    assert r.status_code == 400
    assert b.get(f"/subscriptions/{sub}/licenses").text.count("data-user=") == before
    b.post(f"/subscriptions/{sub}/licenses", {"action": "add_user", "name": "Eve",
                                              "email": "eve@acme.example"})
    assert b.get(f"/subscriptions/{sub}/licenses").text.count("data-user=") == before + 1


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "http:/evil.example", " //evil.example", "/ok\r\nLocation: https://evil.example",
])
def test_next_is_a_local_path_only(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/orders/ord_1", "/subscriptions/s/modify?plan=lite&licenses=2"])
def test_local_next_is_kept(target):
    assert safe_next(target) == target


def test_sign_in_does_not_redirect_off_site(live_sqlite):
    b = live_sqlite.browser()
    landed = b.sign_in(ALICE, path="/login?tenant=demo-acme&next=//evil.example/steal")
    assert urlsplit(landed.url).netloc == urlsplit(live_sqlite.url).netloc
    assert urlsplit(landed.url).path == "/"
    r = b.post("/language", {"locale": "fr", "next": "https://evil.example/"}, allow_redirects=False)
    assert r.headers["Location"] in ("/", live_sqlite.url + "/")


def test_another_tenants_objects_are_a_404_page(live_sqlite):
    alice = live_sqlite.browser()
    home = alice.sign_in(ALICE).text
    acme_sub = subscription_ids(home)[0]
    acme_account = re.search(r'data-account="([^"]+)"', home).group(1)
    gina = live_sqlite.browser()
    gina.sign_in(GINA, tenant="demo-globex")
    for path in (f"/subscriptions/{acme_sub}", f"/subscriptions/{acme_sub}/modify",
                 f"/subscriptions/{acme_sub}/licenses", "/orders/ord_nonexistent",
                 f"/cart?account={acme_account}"):
        r = gina.get(path)
        assert r.status_code == 404, path
        assert "<html" in r.text and "not yours to see" in r.text
    # and a form aimed at it changes nothing either
    gina.get("/")
    r = gina.post(f"/subscriptions/{acme_sub}/licenses", {"action": "add_user", "name": "X",
                                                         "email": "x@globex.example"})
    assert r.status_code == 404
    assert "x@globex.example" not in alice.get(f"/subscriptions/{acme_sub}/licenses").text


def test_security_headers_on_pages_and_docs(live_sqlite):
    b = live_sqlite.browser()
    for path in ("/login", "/docs", "/assets/style.css"):
        r = b.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp, path
        script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|action)="([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html)


def test_no_page_or_asset_refers_to_another_host(live_sqlite):
    b = live_sqlite.browser()
    home = b.sign_in(ALICE)
    sub = subscription_ids(home.text)[0]
    pages = [home.text]
    for path in ("/docs", "/login", f"/subscriptions/{sub}", f"/subscriptions/{sub}/licenses",
                 f"/subscriptions/{sub}/modify?plan=business&licenses=8&billing_period=monthly",
                 "/cart", "/portal-quotes"):
        r = b.get(path)
        assert r.status_code == 200, path
        pages.append(r.text)
    own = urlsplit(live_sqlite.url).netloc
    assets = set()
    for html in pages:
        for ref in _references(html):
            parts = urlsplit(ref.strip("'\""))
            if parts.scheme == "mailto":
                continue
            assert parts.netloc in ("", own), ref
            if ref.startswith("/assets/") or ref.startswith("/docs"):
                assets.add(ref)
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    for asset in assets:
        r = b.get(asset)
        assert r.status_code == 200, asset
        if asset.endswith(".css"):
            for ref in re.findall(r"url\(([^)]*)\)", r.text):
                assert not re.match(r"['\"]?(https?:)?//", ref), (asset, ref)


def test_languages_from_accept_language_and_the_switch(live_sqlite):
    b = live_sqlite.browser()
    home = b.sign_in(ALICE)
    assert '<html lang="en"' in home.text and "€" in home.text
    fr = b.get("/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr"' in fr.text and "Mes abonnements" in fr.text
    assert re.search(r"\d+,\d{2}\s€", fr.text)  # 145,00 € in French
    b.post("/language", {"locale": "fr", "next": "/"})
    assert '<html lang="fr"' in b.last.text  # the switch wins over the browser's English
    b.post("/language", {"locale": "en", "next": "/"}, headers={"Accept-Language": "fr"})
    assert '<html lang="en"' in b.last.text


def test_a_change_for_the_advisors_says_who_answers_and_by_when_before_it_is_placed(live_sqlite):
    from datetime import UTC, datetime

    from babel.dates import format_date

    from gateway.orders.lifecycle import DEFAULT_CASE_HOURS
    from routing.business_hours import business_due

    b = live_sqlite.browser()
    sub = subscription_ids(b.sign_in(ALICE).text)[0]
    downgrade = f"/subscriptions/{sub}/modify?plan=lite&licenses=5&billing_period=monthly"
    due = business_due(datetime.now(UTC).replace(tzinfo=None), DEFAULT_CASE_HOURS)  # demo tenant
    for language, words in (("en", "Corporate Account Services, who answers by"),
                            ("fr", "Services des comptes Corporate, qui répondra d'ici le")):
        note = unescape(re.search(r'id="route-note">([^<]*)<', b.get(downgrade, headers={
            "Accept-Language": language}).text).group(1))
        assert words in note, note
        assert format_date(due.date(), "medium", locale=language) in note, note


def test_development_issuer_demands_pkce(live_sqlite):
    b = live_sqlite.browser()
    start = b.get("/login?tenant=demo-acme")
    without = re.sub(r"&code_challenge(_method)?=[^&]*", "", start.url)
    r = b.get(without)
    assert r.status_code == 400


def test_development_issuer_is_off_without_dev_issuer(sqlite_url, tmp_path):
    from tests.conftest import build_app

    app = build_app(sqlite_url, tmp_path, DEV_ISSUER=False)
    http = app.test_client()
    assert http.get("/dev-issuer/.well-known/openid-configuration").status_code == 404
    assert http.get("/dev-issuer/authorize").status_code == 404


def test_an_expired_trial_offers_subscribe_now_and_buys_a_new_period(live_sqlite):
    import time
    from datetime import date, timedelta

    from gateway import demo
    from tests.conftest import Http, service_token

    gw = live_sqlite
    admin = Http(gw.app.test_client(), service_token(gw.app))
    alice_api = Http(gw.app.test_client(), demo.dev_token(gw.app, ALICE))
    account = alice_api.get("/api/v1/me").get_json()["accounts"][0]["account_id"]
    start = (date.today() - timedelta(days=45)).isoformat()
    trial = admin.post(f"/api/v1/accounts/{account}/subscriptions", json={
        "product": "webinar", "plan": "free", "licenses": 1, "billing_period": "monthly",
        "status": "expired", "current_period_start": start}).get_json()["id"]
    b = gw.browser()
    home = b.sign_in(ALICE)
    assert f'/subscriptions/{trial}/modify">Subscribe now' in home.text
    page = b.get(f"/subscriptions/{trial}/modify")
    assert "Subscribe now" in page.text and 'id="total-due"' not in page.text
    page = b.get(f"/subscriptions/{trial}/modify?plan=lite&licenses=2&billing_period=monthly")
    assert 'data-line-type="charge"' in page.text and 'data-line-type="credit_unused"' not in page.text
    quote_total = re.search(r'id="total-due" data-amount="([^"]+)"', page.text).group(1)
    assert 'id="prompt-payment"' in page.text and 'id="prompt-vat"' in page.text
    b.post(f"/accounts/{account}/payment-method", {"token": "tok_test", "brand": "visa", "last4": "4242",
                                                   "exp_month": "12", "exp_year": "2031", "next": "/"})
    b.get(f"/subscriptions/{trial}/modify?plan=lite&licenses=2&billing_period=monthly")
    b.post(f"/subscriptions/{trial}/vat-number", {"vat_number": "DE136695976", "plan": "lite",
                                                  "licenses": "2", "billing_period": "monthly"})
    assert 'id="prompt-vat"' not in b.last.text and 'id="prompt-payment"' not in b.last.text
    now = re.search(r'id="total-due" data-amount="([^"]+)"', b.last.text).group(1)
    assert now != quote_total  # reverse charge: no VAT any more
    placed = b.post(f"/subscriptions/{trial}/modify", {"plan": "lite", "licenses": "2",
                                                       "billing_period": "monthly", "action": "place",
                                                       "key": "subscribe-1"})
    assert "/orders/" in placed.url
    for _ in range(40):
        if alice_api.get(f"/api/v1/subscriptions/{trial}").get_json()["status"] == "active":
            break
        time.sleep(0.25)
    sub = alice_api.get(f"/api/v1/subscriptions/{trial}").get_json()
    assert (sub["status"], sub["plan"], sub["licenses"]) == ("active", "lite", 2)


def test_a_card_number_is_never_taken_as_a_payment_token(live_sqlite):
    b = live_sqlite.browser()
    b.sign_in(ALICE)
    account = re.search(r'data-account="([^"]+)"', b.get("/").text).group(1)
    r = b.post(f"/accounts/{account}/payment-method", {"token": "4242424242424242", "brand": "visa",
                                                       "last4": "4242", "exp_month": "12",
                                                       "exp_year": "2031", "next": "/"})
    assert r.status_code == 422 and "never the card number" in r.text


def _waiting_case(gw):
    from sqlalchemy import select

    from adapters.models import AdvisorCase

    db = gw.app.extensions["gateway.db"].sessionmaker()
    try:
        return db.scalar(select(AdvisorCase).where(AdvisorCase.status == "open"))
    finally:
        db.close()


def _make_overdue(gw, case_id):
    from datetime import timedelta

    from adapters.models import AdvisorCase
    from tenants.db import utcnow

    db = gw.app.extensions["gateway.db"].sessionmaker()
    try:
        db.get(AdvisorCase, case_id).due_at = utcnow() - timedelta(hours=2)
        db.commit()
    finally:
        db.close()


def test_the_queue_puts_overdue_cases_first_and_marks_them(live_sqlite):
    gw = live_sqlite
    case = _waiting_case(gw)  # the demo's: Gina's period change, assigned to Victor
    b = gw.browser()
    b.sign_in(VICTOR, path="/advisor/login")
    queue = b.get("/advisor").text
    mine = queue.split('id="mine"')[1].split('id="pool"')[0]
    assert f'data-case="{case.id}"' in mine and "overdue" not in mine
    _make_overdue(gw, case.id)
    queue = b.get("/advisor").text
    mine = queue.split('id="mine"')[1].split('id="pool"')[0]
    assert f'class="overdue" data-case="{case.id}"' in mine and "overdue-badge" in mine
    assert f'data-case="{case.id}"' not in b.get("/advisor?status=resolved").text
    assert f'data-case="{case.id}"' in b.get("/advisor?status=open").text


def test_another_advisors_live_claim_shows_who_and_until_when(live_sqlite):
    gw = live_sqlite
    case = _waiting_case(gw)
    _make_overdue(gw, case.id)  # so that Paula, of the pool, may take Victor's case
    paula = gw.browser()
    paula.sign_in("paula@advisors.example", path="/advisor/login")
    assert f'data-case="{case.id}"' in paula.get("/advisor").text.split('id="pool"')[1]
    paula.get(f"/advisor/cases/{case.id}")
    assert "Globex SA" in paula.last.text and 'id="total-due"' in paula.last.text
    paula.post(f"/advisor/cases/{case.id}", {"action": "claim"})
    assert "Claimed by Paula" in paula.last.text and 'id="release"' in paula.last.text
    victor = gw.browser()
    victor.sign_in(VICTOR, path="/advisor/login")
    page = victor.get(f"/advisor/cases/{case.id}").text
    note = page.split('id="claim-note"')[1].split("</p>")[0]
    assert "Paula" in note and "until" in note and "UTC" in note
    assert re.search(r'id="claim"\s+disabled', page) and re.search(r'id="approve"\s+disabled', page)
    r = victor.post(f"/advisor/cases/{case.id}", {"action": "reject", "note": "mine"})
    assert r.status_code == 409  # the use case refuses, the page says so
    paula.get(f"/advisor/cases/{case.id}")
    paula.post(f"/advisor/cases/{case.id}", {"action": "release"})
    assert 'id="claim-note"' not in paula.last.text


def test_contacts_are_not_advisors_and_advisors_are_not_contacts(live_sqlite):
    b = live_sqlite.browser()
    b.sign_in(ALICE)
    r = b.get("/advisor")  # sent to sign in as staff, via /advisor/login, to the issuer's page
    assert urlsplit(r.url).path == "/dev-issuer/authorize" and "Queue" not in r.text
    v = live_sqlite.browser()
    v.sign_in(VICTOR, path="/advisor/login")
    assert urlsplit(v.get("/cart").url).path == "/login"


def test_session_cookie_is_secure_outside_development(sqlite_url, tmp_path):
    from tests.conftest import build_app

    assert build_app(sqlite_url, tmp_path, ENV="staging").config["SESSION_COOKIE_SECURE"] is True
