"""RFC 9068 access-token checks for every issuer we trust, each failure with a stable reason."""

from __future__ import annotations

import binascii
import hashlib
import time
from base64 import urlsafe_b64decode
from dataclasses import dataclass

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from gateway.auth.jwks import has_kid
from gateway.jsonio import bad_strings, strict_loads

# Asymmetric only: an HS256 token "signed" with an RSA public key must never verify.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 8192  # an access token with its claims fits in a few hundred bytes


class TokenRejected(Exception):
    def __init__(self, reason: str, description: str):
        super().__init__(description)
        self.reason = reason
        self.description = description


@dataclass(frozen=True)
class TrustedIssuer:
    """What the verifier needs to know of an issuer; `keys(kid)` may refetch once."""

    url: str
    audience: str
    kind: str  # "own" (our service tokens) or "external"
    issuer_id: str | None
    allow_jwt_typ: bool
    keys: object  # Callable[[str | None], KeySet]
    staff: bool = False
    tenant_trusted: bool = False


@dataclass(frozen=True)
class VerifiedToken:
    claims: dict
    issuer: TrustedIssuer


def peek(token: str) -> tuple[dict, dict]:
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("malformed", f"The token is longer than {MAX_TOKEN_CHARS} characters.")
    try:
        # Both segments go through the strict loader first (nesting, huge integers, duplicate
        # keys) before joserfc or anything else parses them.
        head_b64, payload_b64 = token.split(".")[:2]
        header = strict_loads(urlsafe_b64decode(head_b64 + "=" * (-len(head_b64) % 4)))
        claims = strict_loads(urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
        jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeError, binascii.Error) as exc:
        raise TokenRejected("malformed", "The token is not a well-formed JWT.") from exc
    if not isinstance(claims, dict) or not isinstance(header, dict):
        raise TokenRejected("malformed", "The token's payload is not a JSON object.")
    if bad_strings(header) or bad_strings(claims):  # a NUL in `iss` must not reach a query
        raise TokenRejected("malformed", "The token holds a NUL byte or a lone surrogate.")
    return header, claims


def verify(token: str, find_issuer) -> VerifiedToken:
    header, unverified = peek(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenRejected("algorithm_refused", f"Algorithm {alg!r} is not accepted.")
    typ = str(header.get("typ", "")).lower()
    accepted = {"at+jwt", "application/at+jwt"}
    iss = unverified.get("iss")
    issuer = find_issuer(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise TokenRejected("unknown_issuer", "The token's issuer is not trusted here.")
    if issuer.allow_jwt_typ:
        accepted |= {"jwt", "application/jwt"}
    if typ not in accepted:
        raise TokenRejected("wrong_type", "The token is not an access token (typ at+jwt).")
    kid = header.get("kid")
    keys: KeySet = issuer.keys(kid)
    if not has_kid(keys, kid):
        raise TokenRejected("unknown_key", "The token was signed with a key its issuer does not publish.")
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except BadSignatureError as exc:
        raise TokenRejected("bad_signature", "The token's signature does not verify.") from exc
    except JoseError as exc:
        raise TokenRejected("bad_signature", f"The token could not be verified: {exc}.") from exc
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer.url},
        aud={"essential": True, "value": issuer.audience},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        client_id={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except ExpiredTokenError as exc:
        raise TokenRejected("expired", "The token has expired.") from exc
    except MissingClaimError as exc:
        raise TokenRejected("missing_claim", f"The token lacks the {exc.claim!r} claim.") from exc
    except InvalidClaimError as exc:
        reason = {"aud": "wrong_audience", "nbf": "not_yet_valid", "iat": "not_yet_valid"}.get(
            exc.claim, "invalid_claim")
        raise TokenRejected(reason, f"The token's {exc.claim!r} claim is not acceptable.") from exc
    return VerifiedToken(decoded.claims, issuer)


def verify_remembered(token: str, find_issuer, cache, now=time.time) -> VerifiedToken:
    """`verify`, done once per process for a given token: the RSA check and the claims'
    parsing were a tenth of a quote's CPU, paid again on each of a client's requests.

    The verdict is kept in the per-process cache (gateway.cache), keyed by the token's digest,
    so that any change to issuers, their keys or the tenants trusting them forgets it; a
    refusal is never kept. Only expiry can change while nothing else does: it is checked on
    every use. (A key an IdP stops publishing at its JWKS URI, with nothing changed here,
    keeps its tokens accepted until they expire, as a JWKS cache would.)"""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    verified = cache.get("verified_token", digest, lambda: verify(token, find_issuer))
    if now() > verified.claims["exp"] + LEEWAY_SECONDS:
        raise TokenRejected("expired", "The token has expired.")
    return verified
