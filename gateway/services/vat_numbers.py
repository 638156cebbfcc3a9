"""VAT numbers against the EU registry (design.md §3.9): the status a number holds, and the
worker's re-check of numbers stored while the registry could not answer.

Statuses: `valid` (offline check only, VIES off), `verified` (the registry says registered),
`unverified` (the registry was unavailable; re-checked with backoff), `invalid` (found not
registered later). Reverse charge relies on any of them but `invalid`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from adapters.vies import ViesUnavailable
from gateway.errors import GatewayError
from gateway.services import events
from tenants.db import utcnow
from tenants.models import Account
from tenants.vat_numbers import VatNumber
from tenants.vat_numbers import is_valid as passes_offline_check

log = logging.getLogger("gateway.vat")

RELIED_ON = frozenset({"valid", "verified", "unverified"})
MAX_WAIT = timedelta(hours=6)


def status_of(account: Account) -> str | None:
    """The status shown: None without a number; numbers stored before VIES count as `valid`."""
    if not account.vat_number:
        return None
    return account.vat_status or "valid"


def relied_on(account: Account) -> bool:
    """May reverse charge rely on the account's number?"""
    return status_of(account) in RELIED_ON and passes_offline_check(account.vat_number,
                                                                    account.country)


def verify(parsed: VatNumber) -> str:
    """Ask the registry (when configured) about a number that passed the offline check.
    Call it outside a transaction: it may wait on the registry for seconds."""
    vies = current_app.extensions.get("gateway.vies")
    if vies is None:
        return "valid"
    try:
        registered = vies.check(parsed.number)
    except ViesUnavailable as exc:
        log.warning("VIES unavailable, %s stored as unverified: %s", parsed.number, exc)
        return "unverified"
    if not registered:
        message = f"{parsed.number} is not registered in the EU VAT registry (VIES)."
        raise GatewayError(422, "invalid_vat_number", message, reason="not_registered",
                           errors={"vat_number": [message]})
    return "verified"


def store(account: Account, parsed: VatNumber, status: str) -> None:
    account.vat_number = parsed.number
    account.vat_status = status
    account.vat_check_attempts = 0
    account.vat_next_check_at = _next_check(0) if status == "unverified" else None


def _next_check(attempts: int):
    base = current_app.config["VIES_RECHECK_SECONDS"]
    return utcnow() + min(timedelta(seconds=base * 2 ** attempts), MAX_WAIT)


def recheck_due(limit: int = 20) -> int:
    """The periodic pass: ask again about unverified numbers whose time has come."""
    vies = current_app.extensions.get("gateway.vies")
    if vies is None:
        return 0
    db = current_app.extensions["gateway.db"].sessionmaker()
    moved = 0
    try:
        due = db.execute(select(Account.id, Account.vat_number).where(
            Account.vat_status == "unverified", Account.vat_next_check_at <= utcnow())
            .order_by(Account.vat_next_check_at).limit(limit)).all()
        db.commit()
        for account_id, number in due:
            try:
                registered = vies.check(number)
            except ViesUnavailable:
                registered = None
            account = db.get(Account, account_id, with_for_update=True)
            if account is None or account.vat_number != number or account.vat_status != "unverified":
                db.rollback()  # changed meanwhile: the new number has its own status
                continue
            if registered is None:
                account.vat_check_attempts += 1
                account.vat_next_check_at = _next_check(account.vat_check_attempts)
            elif registered:
                account.vat_status, account.vat_next_check_at = "verified", None
                moved += 1
            else:
                account.vat_status, account.vat_next_check_at = "invalid", None
                events.record(db, "account.vat_number_invalidated", account.tenant_id, {
                    "account_id": account.id, "vat_number": number, "country": account.country})
                log.warning("VAT number %s of account %s is not registered: marked invalid",
                            number, account.id)
                moved += 1
            db.commit()
    finally:
        db.close()
    return moved
