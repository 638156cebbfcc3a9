"""Who is calling, resolved once per request from a verified token."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import bindparam, select

from tenants.models import Advisor, Contact, Membership, TenantIssuer


@dataclass(frozen=True)
class Principal:
    kind: str  # "service" | "contact" | "advisor"
    issuer: str
    subject: str
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    contact_ids: tuple[str, ...] = ()
    advisor: Advisor | None = None

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.subject}@{self.issuer}"

    def roles_on(self, account_id: str) -> frozenset[str]:
        return self.memberships.get(account_id, frozenset())


def resolve(db, verified, cache=None) -> Principal:
    claims, issuer = verified.claims, verified.issuer
    if issuer.kind == "own":
        scope = claims.get("scope") or ""
        scopes = scope.split() if isinstance(scope, str) else list(scope)
        return Principal("service", issuer.url, claims["sub"], claims.get("client_id"),
                         frozenset(scopes))
    if issuer.staff:
        advisor = db.scalar(select(Advisor).where(Advisor.issuer_id == issuer.issuer_id,
                                                  Advisor.subject == claims["sub"]))
        if advisor is not None or not issuer.tenant_trusted:
            return Principal("advisor", issuer.url, claims["sub"], claims.get("client_id"),
                             advisor=advisor)
    if cache is None:
        return _contact(db, issuer, claims)
    # Memberships change rarely (and bump the cache version when they do): cached per subject.
    found = cache.get("contact", (issuer.issuer_id, claims["sub"]),
                      lambda: _contact(db, issuer, {"sub": claims["sub"]}))
    client_id = claims.get("client_id")
    return found if found.client_id == client_id else replace(found, client_id=client_id)


# A contact counts only in tenants that trust the issuer that vouched for it.
_MEMBERSHIPS = (select(Contact.id, Membership.account_id, Membership.roles)
                .join(TenantIssuer, (TenantIssuer.tenant_id == Contact.tenant_id)
                      & (TenantIssuer.issuer_id == Contact.issuer_id))
                .outerjoin(Membership, Membership.contact_id == Contact.id)
                .where(Contact.issuer_id == bindparam("issuer_id"),
                       Contact.subject == bindparam("subject")))


def _contact(db, issuer, claims) -> Principal:
    # Plain rows, no entities: read once per contact and process, often on the hot path.
    rows = db.connection().execute(_MEMBERSHIPS, {"issuer_id": issuer.issuer_id,
                                                  "subject": claims["sub"]}).all()
    memberships: dict[str, set[str]] = {}
    for _contact_id, account_id, roles in rows:
        if account_id:
            memberships.setdefault(account_id, set()).update(roles or ())
    return Principal(
        "contact", issuer.url, claims["sub"], claims.get("client_id"),
        memberships={a: frozenset(r) for a, r in memberships.items()},
        contact_ids=tuple(sorted({r[0] for r in rows})),
    )
