"""Request and response bodies. Unknown fields are refused (marshmallow's RAISE)."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from gateway.orders.mail import LOCALES
from routing.money import CURRENCIES, MINOR_UNITS
from routing.periods import BILLING_PERIODS

# ISO 3166-1 alpha-2, the officially assigned codes.
COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())
ISO_COUNTRY = validate.OneOf(sorted(COUNTRIES), error="Use an ISO 3166 alpha-2 code, e.g. DE.")
Currency = validate.OneOf(sorted(CURRENCIES))
Period = validate.OneOf(BILLING_PERIODS)
# What the columns hold (INTEGER; NUMERIC(20, 4)): larger input is refused, not a database error.
MAX_INT = 2**31 - 1
AMOUNT_PLACES = 4
# api.md: amounts have at most 12 digits before the point; licenses at most 100 000.
MAX_AMOUNT = Decimal(10) ** 12
MAX_LICENSES = 100_000
Count = validate.Range(min=1, max=MAX_INT)
Licenses = validate.Range(min=1, max=MAX_LICENSES)
# A decimal string as sent and answered ("49.00", "-12.34", "0.1234").
DECIMAL_PATTERN = r"^-?[0-9]{1,16}(\.[0-9]{1,4})?$"
ID = validate.Length(1, 40)  # every id column is String(40)
# Periods are computed from these dates; keep them where calendar arithmetic stays valid.
PeriodDate = validate.Range(min=date(1970, 1, 1), max=date(9998, 12, 31))
Email = validate.Length(max=320)
Locale = validate.OneOf(LOCALES)


class Amount(fields.Decimal):
    """A non-negative money amount, sent as a decimal string ("49.00"), never a JSON number."""

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {}).update(
            {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,4})?$", "example": "49.00"})
        super().__init__(as_string=True, places=None, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("Send an amount as a decimal string, e.g. \"49.00\".")
        number = super()._deserialize(value, attr, data, **kwargs)
        # Checked here, not with validate.Range: the document shows a string with a pattern.
        if not 0 <= number < MAX_AMOUNT:
            raise ma.ValidationError("At least 0, with at most 12 digits before the point.")
        if number.as_tuple().exponent < -AMOUNT_PLACES:
            raise ma.ValidationError(f"At most {AMOUNT_PLACES} decimal places.")
        return number


def Money(**kwargs) -> fields.String:  # noqa: N802  (a field, named like one)
    """An amount as answered: a decimal string in major units ("49.00", "-12.34")."""
    metadata = {"pattern": DECIMAL_PATTERN, "example": "49.00", **kwargs.pop("metadata", {})}
    return fields.String(metadata=metadata, **kwargs)


class Timestamp(fields.DateTime):
    """ISO 8601 in UTC with a Z: the database keeps naive UTC datetimes."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE
        ordered = True


class EmptySchema(Strict):
    """The body of an action that takes none: whatever field it names is unknown (422)."""


class TokenSchema(Strict):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    scope = fields.String()


class WebClientSchema(Strict):
    client_id = fields.String(required=True, validate=validate.Length(1, 200))
    client_secret = fields.String(required=True, load_only=True, validate=validate.Length(1, 500))


class IssuerSchema(Strict):
    issuer = fields.Url(required=True, require_tld=False, validate=validate.Length(max=500))
    # The pages' OpenID Connect client at this issuer (design.md §6); the secret is write-only.
    web_client = fields.Nested(WebClientSchema)
    audience = fields.String(required=True, validate=validate.Length(1, 500))
    jwks_uri = fields.Url(require_tld=False, validate=validate.Length(max=1000))
    jwks = fields.Dict()
    allow_jwt_typ = fields.Boolean(load_default=False)

    @validates_schema
    def _one_key_source(self, data, **kwargs):
        if ("jwks_uri" in data) == ("jwks" in data):
            raise ma.ValidationError("Give exactly one of jwks_uri or jwks.", "jwks_uri")
        keys = data.get("jwks", {}).get("keys") if "jwks" in data else None
        if "jwks" in data and (not isinstance(keys, list) or not keys):
            raise ma.ValidationError("jwks must hold a non-empty 'keys' list.", "jwks")


class IssuerOutSchema(Strict):
    id = fields.String()
    issuer = fields.String(attribute="url")
    audience = fields.String()
    jwks_uri = fields.String(allow_none=True)
    jwks = fields.Dict(allow_none=True)
    allow_jwt_typ = fields.Boolean()
    web_client = fields.Nested(WebClientSchema, allow_none=True)  # the id only: the secret is load_only


# -- catalog ---------------------------------------------------------------------------------
class PriceSchema(Strict):
    currency = fields.String(required=True, validate=Currency)
    billing_period = fields.String(required=True, validate=Period)
    unit_amount = Amount(required=True)


class PlanSchema(Strict):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_-]{1,60}$"))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    rank = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_INT))
    prices = fields.List(fields.Nested(PriceSchema), load_default=list)


class ProductInSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    plans = fields.List(fields.Nested(PlanSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _unique(self, data, **kwargs):
        plans = data.get("plans", [])
        if len({p["code"] for p in plans}) != len(plans):
            raise ma.ValidationError("Plan codes must be unique.", "plans")
        if len({p["rank"] for p in plans}) != len(plans):
            raise ma.ValidationError("Plan ranks must be unique.", "plans")
        for p in plans:
            keys = [(x["currency"], x["billing_period"]) for x in p["prices"]]
            if len(set(keys)) != len(keys):
                raise ma.ValidationError("One price per currency and billing period.", "plans")


class ProductSchema(Strict):
    code = fields.String()
    name = fields.String()
    plans = fields.List(fields.Dict())


# -- tenants ---------------------------------------------------------------------------------
class AdvisorRuleSchema(Strict):
    change_kind = fields.String(required=True, validate=validate.OneOf(
        ["plan_upgrade", "plan_downgrade", "licenses_added", "licenses_removed",
         "billing_period_changed", "new_subscription"]))
    segment = fields.String(validate=validate.OneOf(["self_serve", "enterprise"]))
    reason = fields.String(required=True, validate=validate.Length(1, 300))


class PolicySchema(Strict):
    enterprise_license_threshold = fields.Integer(strict=True, allow_none=True, validate=Count)
    segment = fields.String(allow_none=True, validate=validate.OneOf(["self_serve", "enterprise"]))
    require_vat_number = fields.Boolean()
    advisor_rules = fields.List(fields.Nested(AdvisorRuleSchema))
    case_due_hours = fields.Integer(strict=True, allow_none=True, validate=Count)
    require_po_number = fields.Boolean()
    locale = fields.String(allow_none=True, validate=Locale,
                           metadata={"description": "contacts' default language: en | fr"})


class TenantInSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    slug = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,99}$"))
    issuers = fields.List(fields.Nested(IssuerSchema), load_default=list)
    policy = fields.Nested(PolicySchema, load_default=dict)


class TenantPatchSchema(Strict):
    name = fields.String(validate=validate.Length(1, 200))
    issuers = fields.List(fields.Nested(IssuerSchema))
    policy = fields.Nested(PolicySchema)


class TenantSchema(Strict):
    id = fields.String()
    name = fields.String()
    slug = fields.String()
    issuers = fields.List(fields.Nested(IssuerOutSchema))
    policy = fields.Dict()
    created_at = Timestamp()


# -- accounts, contacts, users ---------------------------------------------------------------
class AccountInSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    country = fields.String(required=True, validate=ISO_COUNTRY)
    currency = fields.String(required=True, validate=Currency)
    billing_channel = fields.String(required=True, validate=validate.OneOf(["online", "corporate"]))
    payment_terms = fields.String(required=True, validate=validate.OneOf(["card", "invoice"]))
    vat_number = fields.String(allow_none=True, validate=validate.Length(1, 40))
    credit_balance = Amount()
    advisor_id = fields.String(allow_none=True, validate=ID)

    @validates_schema
    def _balance_in_minor_units(self, data, **kwargs):
        balance, currency = data.get("credit_balance"), data.get("currency")
        if balance is not None and currency in MINOR_UNITS and (
            balance.as_tuple().exponent < -MINOR_UNITS[currency]
        ):
            raise ma.ValidationError(f"At most {MINOR_UNITS[currency]} decimal places in {currency}.",
                                     "credit_balance")


class AccountSchema(Strict):
    id = fields.String()
    tenant_id = fields.String()
    name = fields.String()
    country = fields.String()
    currency = fields.String()
    billing_channel = fields.String()
    payment_terms = fields.String()
    vat_number = fields.String(allow_none=True)
    vat_status = fields.String(allow_none=True, metadata={
        "description": "valid (offline check, VIES off) | verified | unverified | invalid"})
    credit_balance = Money()
    advisor_id = fields.String(allow_none=True)
    payment_method = fields.Dict(allow_none=True)
    segment = fields.String()
    segment_reasons = fields.List(fields.String())
    created_at = Timestamp()


class ContactInSchema(Strict):
    subject = fields.String(required=True, validate=validate.Length(1, 255))
    issuer = fields.String(validate=validate.Length(1, 500))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    email = fields.Email(required=True, validate=Email)
    roles = fields.List(fields.String(validate=validate.OneOf(["billing_contact", "user"])),
                        required=True, validate=validate.Length(min=1))
    locale = fields.String(allow_none=True, validate=Locale,
                           metadata={"description": "en | fr; unset: the tenant's default"})


class ContactSchema(Strict):
    id = fields.String()
    tenant_id = fields.String()
    account_id = fields.String()
    issuer = fields.String()
    subject = fields.String()
    name = fields.String()
    email = fields.String()
    roles = fields.List(fields.String())
    locale = fields.String(allow_none=True)


class UserInSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    email = fields.Email(required=True, validate=Email)


class UserSchema(Strict):
    id = fields.String()
    account_id = fields.String()
    name = fields.String()
    email = fields.String()
    created_at = Timestamp()


class SubscriptionInSchema(Strict):
    product = fields.String(required=True, validate=validate.Length(1, 60))
    plan = fields.String(required=True, validate=validate.Length(1, 60))
    licenses = fields.Integer(required=True, strict=True, validate=Licenses)
    billing_period = fields.String(required=True, validate=Period)
    status = fields.String(required=True, validate=validate.OneOf(["trial", "active", "expired",
                                                                   "canceled"]))
    current_period_start = fields.Date(required=True, validate=PeriodDate)
    current_period_end = fields.Date(validate=PeriodDate)

    @validates_schema
    def _period(self, data, **kwargs):
        start, end = data.get("current_period_start"), data.get("current_period_end")
        if start and end and end <= start:
            raise ma.ValidationError("Must be after current_period_start.", "current_period_end")


class SubscriptionSchema(Strict):
    id = fields.String()
    account_id = fields.String()
    product = fields.String()
    plan = fields.String()
    licenses = fields.Integer()
    billing_period = fields.String()
    status = fields.String()
    current_period_start = fields.Date()
    current_period_end = fields.Date()
    recurring_amount = Money(allow_none=True)
    currency = fields.String()


class StaffIssuerSchema(IssuerSchema):
    pass


class AdvisorInSchema(Strict):
    issuer = fields.String(required=True, validate=validate.Length(1, 500))
    subject = fields.String(required=True, validate=validate.Length(1, 255))
    name = fields.String(required=True, validate=validate.Length(1, 200))
    email = fields.Email(required=True, validate=Email)
    pool = fields.String(load_default="corporate-account-services",
                         validate=validate.Length(1, 100))


class AdvisorSchema(Strict):
    id = fields.String()
    issuer = fields.String()
    subject = fields.String()
    name = fields.String()
    email = fields.String()
    pool = fields.String()


# -- requirements ----------------------------------------------------------------------------
class PaymentMethodInSchema(Strict):
    token = fields.String(required=True, validate=validate.Length(1, 200))
    brand = fields.String(required=True, validate=validate.Length(1, 40))
    last4 = fields.String(required=True, validate=validate.Regexp(r"^\d{4}$"))
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(1, 12))
    exp_year = fields.Integer(required=True, strict=True, validate=validate.Range(2000, 2100))


class PaymentMethodSchema(Strict):
    brand = fields.String()
    last4 = fields.String()
    exp_month = fields.Integer()
    exp_year = fields.Integer()
    expired = fields.Boolean()


class VatNumberInSchema(Strict):
    vat_number = fields.String(required=True, validate=validate.Length(1, 40))


class VatNumberSchema(Strict):
    vat_number = fields.String()
    country = fields.String()
    valid = fields.Boolean()
    vat_status = fields.String()


class MeSchema(Strict):
    kind = fields.String()
    issuer = fields.String()
    subject = fields.String()
    client_id = fields.String(allow_none=True)
    scopes = fields.List(fields.String())
    accounts = fields.List(fields.Dict())
    advisor = fields.Dict(allow_none=True)
