"""What a customer provides before an upgrade: payment details and a VAT number."""

from __future__ import annotations

from gateway import clock
from gateway.access import load_account
from gateway.services import admin, views


def set_payment_method(db, account_id: str, data: dict) -> dict:
    account = admin.set_payment_method(db, load_account(db, account_id, "bill"), data)
    return views.payment_method(account, clock.today())


def set_vat_number(db, account_id: str, raw: str) -> dict:
    return admin.set_vat_number(db, load_account(db, account_id, "bill"), raw)
