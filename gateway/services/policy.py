"""What pricing and routing read of a tenant (its policy): cached per process (gateway.cache),
read by itself, or carried along by the statement a placement makes anyway (services.facts)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, select

from tenants.models import Tenant

COLUMNS = (Tenant.enterprise_license_threshold, Tenant.segment, Tenant.require_vat_number,
           Tenant.advisor_rules, Tenant.case_due_hours, Tenant.locale)
_POLICY = select(*COLUMNS).where(Tenant.id == bindparam("tenant_id"))


@dataclass(frozen=True)
class TenantPolicy:
    enterprise_license_threshold: int | None
    segment: str | None
    require_vat_number: bool
    advisor_rules: tuple
    case_due_hours: int | None
    locale: str | None = None  # the language of its mail when a contact has none


def labelled_columns(tenant_id) -> list:
    """The policy as scalar subqueries of the tenant `tenant_id` (a parameter), each labelled
    `policy_<column>`: for a statement that reads something else."""
    return [select(column).where(Tenant.id == tenant_id).scalar_subquery()
            .label(f"policy_{column.key}") for column in COLUMNS]


def from_values(enterprise_license_threshold, segment, require_vat_number, advisor_rules,
                case_due_hours, locale) -> TenantPolicy:
    return TenantPolicy(enterprise_license_threshold, segment, bool(require_vat_number),
                        tuple(advisor_rules or ()), case_due_hours, locale)


def from_labelled(mapping) -> TenantPolicy:
    return from_values(*(mapping[f"policy_{column.key}"] for column in COLUMNS))


def tenant_policy(deps, tenant_id: str) -> TenantPolicy:
    def load():
        # The policy's columns only: not the tenant's issuers (an eager, JWKS-sized load), and
        # no entity to track (read once per tenant and process, often on the hot path).
        return from_values(*deps.db.connection().execute(_POLICY, {"tenant_id": tenant_id}).one())
    return deps.cache.get("tenant", tenant_id, load)
