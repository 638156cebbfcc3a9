"""Signing keys: ours for service tokens, and the development issuer's for demo sign-ins."""

from __future__ import annotations

from pathlib import Path

from joserfc.jwk import KeySet, RSAKey


def load_or_create(path: Path) -> RSAKey:
    """A PEM key from disk; created on first use (development only, refused in production)."""
    if path.exists():
        key = RSAKey.import_key(path.read_bytes())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = RSAKey.generate_key(2048)
        path.write_bytes(key.as_pem(private=True))
        path.chmod(0o600)
    return RSAKey.import_key(key.as_pem(private=True), {"kid": key.thumbprint(), "use": "sig"})


def public_jwks(*keys: RSAKey) -> dict:
    return {"keys": [dict(k.as_dict(private=False), alg="RS256") for k in keys]}


def key_set(jwks: dict) -> KeySet:
    return KeySet.import_key_set(jwks)
