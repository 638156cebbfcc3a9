"""EU VAT treatment of a sale, from a dated table of standard rates."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from routing.money import ZERO

# Finance audits quotes against this date, so it travels with every tax answer.
RATES_AS_OF = date(2026, 1, 1)
STANDARD_RATES: dict[str, Decimal] = {
    country: Decimal(rate)
    for country, rate in {
        "AT": "0.20", "BE": "0.21", "BG": "0.20", "HR": "0.25", "CY": "0.19", "CZ": "0.21",
        "DK": "0.25", "EE": "0.24", "FI": "0.255", "FR": "0.20", "DE": "0.19", "GR": "0.24",
        "HU": "0.27", "IE": "0.23", "IT": "0.22", "LV": "0.21", "LT": "0.21", "LU": "0.17",
        "MT": "0.18", "NL": "0.21", "PL": "0.23", "PT": "0.23", "RO": "0.21", "SK": "0.23",
        "SI": "0.22", "ES": "0.21", "SE": "0.25",
    }.items()
}  # fmt: skip
EU_MEMBER_STATES = frozenset(STANDARD_RATES)


@dataclass(frozen=True)
class TaxTreatment:
    treatment: str  # "standard" | "reverse_charge" | "not_applicable"
    country: str
    rate: Decimal


def tax_treatment(
    seller_country: str, buyer_country: str, has_valid_vat_number: bool
) -> TaxTreatment:
    if buyer_country not in EU_MEMBER_STATES:
        return TaxTreatment("not_applicable", buyer_country, ZERO)
    if buyer_country != seller_country and has_valid_vat_number:
        # A business buyer in another member state accounts for the VAT itself.
        return TaxTreatment("reverse_charge", buyer_country, ZERO)
    return TaxTreatment("standard", buyer_country, STANDARD_RATES[buyer_country])
