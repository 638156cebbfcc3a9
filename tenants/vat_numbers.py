"""VAT numbers checked offline (prefix, format, check digits) by python-stdnum."""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.eu import vat
from stdnum.exceptions import ValidationError

# VAT numbers say EL for Greece where ISO 3166 says GR.
_PREFIX_TO_COUNTRY = {"EL": "GR"}


@dataclass(frozen=True)
class VatNumber:
    number: str
    country: str


class InvalidVatNumber(ValueError):
    pass


_COUNTRY_TO_PREFIX = {v: k for k, v in _PREFIX_TO_COUNTRY.items()}


def parse(raw: str, account_country: str | None = None) -> VatNumber:
    compact = raw.replace(" ", "").replace(".", "").replace("-", "")
    if account_country and compact[:1].isdigit():
        # Customers often type the number without its country prefix: it is the account's.
        raw = _COUNTRY_TO_PREFIX.get(account_country, account_country) + compact
    try:
        number = vat.validate(raw)
    except ValidationError as exc:
        raise InvalidVatNumber(f"{raw!r} is not a valid EU VAT number: {exc.message}") from exc
    prefix = number[:2]
    if prefix == "XI":
        country = "GB"
    else:
        country = _PREFIX_TO_COUNTRY.get(prefix, prefix)
    if account_country and country != account_country:
        raise InvalidVatNumber(
            f"{number} is a VAT number of {country}, not of the account's country {account_country}."
        )
    return VatNumber(number, country)


def is_valid(number: str | None, account_country: str) -> bool:
    if not number:
        return False
    try:
        parse(number, account_country)
    except InvalidVatNumber:
        return False
    return True
