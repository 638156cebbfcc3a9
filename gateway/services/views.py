"""How records look on the wire (the shapes of api.md)."""

from __future__ import annotations

from decimal import Decimal

from routing.money import quantize
from routing.pricing import recurring
from tenants.classification import classify


def money(amount: Decimal, currency: str) -> str:
    return str(quantize(Decimal(amount), currency))


def unit_amount(amount: Decimal, currency: str) -> str:
    """A catalog price keeps its sub-cent digits (they count in pricing); at least minor units."""
    shown = quantize(amount, currency)
    return str(amount.normalize() if shown != amount else shown)


def issuer(row) -> dict:
    return {"id": row.id, "url": row.url, "audience": row.audience, "jwks_uri": row.jwks_uri,
            "jwks": row.jwks, "allow_jwt_typ": row.allow_jwt_typ}


def tenant(row) -> dict:
    return {
        "id": row.id, "name": row.name, "slug": row.slug,
        "issuers": row.issuers,
        "policy": {
            "enterprise_license_threshold": row.enterprise_license_threshold,
            "segment": row.segment,
            "require_vat_number": row.require_vat_number,
            "advisor_rules": row.advisor_rules or [],
            "case_due_hours": row.case_due_hours,
            "require_po_number": bool(row.require_po_number),
            "locale": row.locale,
        },
        "created_at": row.created_at,
    }


def segment_of(account, tenant_row, active_licenses: int):
    return classify(
        billing_channel=account.billing_channel,
        has_advisor=account.advisor_id is not None,
        payment_terms=account.payment_terms,
        active_licenses=active_licenses,
        threshold=tenant_row.enterprise_license_threshold,
        pinned=tenant_row.segment,
    )


def payment_method(account, today) -> dict | None:
    if not account.pm_token:
        return None
    return {"brand": account.pm_brand, "last4": account.pm_last4,
            "exp_month": account.pm_exp_month, "exp_year": account.pm_exp_year,
            "expired": (account.pm_exp_year, account.pm_exp_month) < (today.year, today.month)}


def account(row, tenant_row, active_licenses: int, today) -> dict:
    seg = segment_of(row, tenant_row, active_licenses)
    return {
        "id": row.id, "tenant_id": row.tenant_id, "name": row.name, "country": row.country,
        "currency": row.currency, "billing_channel": row.billing_channel,
        "payment_terms": row.payment_terms, "vat_number": row.vat_number,
        "vat_status": (row.vat_status or "valid") if row.vat_number else None,
        "credit_balance": money(row.credit_balance, row.currency),
        "advisor_id": row.advisor_id, "payment_method": payment_method(row, today),
        "segment": seg.segment, "segment_reasons": list(seg.reasons),
        "created_at": row.created_at,
    }


def subscription(row, currency: str, unit_price: Decimal | None) -> dict:
    amount = None
    if unit_price is not None:
        amount = money(recurring(unit_price, row.licenses, row.billing_period), currency)
    return {
        "id": row.id, "account_id": row.account_id, "product": row.product, "plan": row.plan,
        "licenses": row.licenses, "billing_period": row.billing_period, "status": row.status,
        "current_period_start": row.current_period_start,
        "current_period_end": row.current_period_end,
        "recurring_amount": amount, "currency": currency,
    }


def product(row) -> dict:
    return {
        "code": row.code, "name": row.name,
        "plans": [
            {"code": p.code, "name": p.name, "rank": p.rank,
             "prices": [{"currency": x.currency, "billing_period": x.billing_period,
                         "unit_amount": unit_amount(x.unit_amount, x.currency)}
                        for x in sorted(p.prices, key=lambda x: (x.currency, x.billing_period))]}
            for p in row.plans
        ],
    }
