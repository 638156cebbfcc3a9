"""A verified access token is remembered per process: verified once, refused once expired,
forgotten when trust changes, and a refusal is never remembered."""

from __future__ import annotations

import time

import pytest

from gateway.auth.keys import key_set
from gateway.auth.verify import LEEWAY_SECONDS, TokenRejected, TrustedIssuer, verify_remembered
from gateway.cache import ConfigCache
from tests.conftest import TestIssuer


@pytest.fixture
def idp():
    issuer = TestIssuer.new()
    keys = key_set(issuer.jwks)
    calls = []

    def find_issuer(url):
        calls.append(url)
        if url != issuer.url:
            return None
        return TrustedIssuer(issuer.url, issuer.audience, "external", "iss_1", False,
                             lambda kid: keys)

    return issuer, find_issuer, calls


def test_a_token_is_verified_once_per_process(idp):
    issuer, find_issuer, calls = idp
    cache, token = ConfigCache(), issuer.token("alice")
    first = verify_remembered(token, find_issuer, cache)
    again = verify_remembered(token, find_issuer, cache)
    assert again is first and again.claims["sub"] == "alice"
    assert len(calls) == 1


def test_a_remembered_token_is_refused_once_expired(idp):
    issuer, find_issuer, _ = idp
    cache, token = ConfigCache(), issuer.token("alice")
    exp = verify_remembered(token, find_issuer, cache).claims["exp"]
    assert verify_remembered(token, find_issuer, cache, now=lambda: exp + LEEWAY_SECONDS)
    with pytest.raises(TokenRejected) as refused:
        verify_remembered(token, find_issuer, cache, now=lambda: exp + LEEWAY_SECONDS + 1)
    assert refused.value.reason == "expired"


def test_a_change_of_trust_forgets_every_verdict(idp):
    issuer, find_issuer, calls = idp
    cache, token = ConfigCache(), issuer.token("alice")
    verify_remembered(token, find_issuer, cache)
    cache.invalidate()  # what an admin change does (gateway.cache)
    verify_remembered(token, find_issuer, cache)
    assert len(calls) == 2


def test_a_refusal_is_not_remembered(idp):
    issuer, find_issuer, calls = idp
    cache = ConfigCache()
    token = issuer.token("alice", exp=int(time.time()) - 3600)
    for _ in range(2):
        with pytest.raises(TokenRejected) as refused:
            verify_remembered(token, find_issuer, cache)
        assert refused.value.reason == "expired"
    assert len(calls) == 2
    forged = issuer.token("alice", key=TestIssuer.new().key, header={"kid": issuer.key.kid})
    with pytest.raises(TokenRejected) as refused:
        verify_remembered(forged, find_issuer, cache)
    assert refused.value.reason == "bad_signature"
