"""GATEWAY_ENV=production refuses to start on a development-only shortcut."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey

from gateway import create_app
from gateway.config import UnsafeProductionConfig

ENV_VARS = ("GATEWAY_ENV", "GATEWAY_DEV_ISSUER", "GATEWAY_SIGNING_KEY_FILE", "GATEWAY_FROZEN_TODAY",
            "GATEWAY_DATABASE_URL", "GATEWAY_INSTANCE_PATH", "GATEWAY_REDIS_URL")


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A production environment that is complete; each test takes one piece away."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "keys" / "signing.pem"
    key_file.parent.mkdir()
    key_file.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_DEV_ISSUER", "0")
    monkeypatch.setenv("GATEWAY_SIGNING_KEY_FILE", str(key_file))
    monkeypatch.setenv("GATEWAY_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite:///{tmp_path / 'gateway.db'}")
    return monkeypatch


def start(overrides=None):
    app = create_app(overrides)
    app.extensions["gateway.db"].dispose()
    return app


def test_production_starts_when_nothing_is_missing(env, tmp_path):
    app = start()
    assert app.config["ENV"] == "production"
    assert "gateway.dev_key" not in app.extensions
    assert not (tmp_path / "instance" / "dev-issuer-key.pem").exists()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_production_refuses_the_development_issuer(env, value):
    env.setenv("GATEWAY_DEV_ISSUER", value)
    with pytest.raises(UnsafeProductionConfig, match="development issuer"):
        start()


def test_production_refuses_the_development_issuer_by_default(env):
    env.delenv("GATEWAY_DEV_ISSUER")
    with pytest.raises(UnsafeProductionConfig, match="development issuer"):
        start()


def test_production_refuses_to_run_without_a_signing_key_file(env):
    env.delenv("GATEWAY_SIGNING_KEY_FILE")
    with pytest.raises(UnsafeProductionConfig, match="signing key"):
        start()


def test_production_refuses_a_signing_key_file_that_does_not_exist(env, tmp_path):
    """Else a key would be generated on the spot and tokens would die with the disk."""
    missing = tmp_path / "nowhere" / "signing.pem"
    env.setenv("GATEWAY_SIGNING_KEY_FILE", str(missing))
    with pytest.raises(UnsafeProductionConfig, match="signing key"):
        start()
    assert not missing.exists()


def test_production_refuses_a_frozen_clock(env):
    env.setenv("GATEWAY_FROZEN_TODAY", "2026-03-10")
    with pytest.raises(UnsafeProductionConfig, match="FROZEN_TODAY"):
        start()


def test_every_problem_is_named_at_once(env):
    env.delenv("GATEWAY_DEV_ISSUER")
    env.delenv("GATEWAY_SIGNING_KEY_FILE")
    with pytest.raises(UnsafeProductionConfig) as refused:
        start()
    assert "development issuer" in str(refused.value) and "signing key" in str(refused.value)


def test_overrides_cannot_sneak_past_the_check(env):
    with pytest.raises(UnsafeProductionConfig):
        start({"DEV_ISSUER": True})


def test_development_allows_the_shortcuts(env, tmp_path):
    env.setenv("GATEWAY_ENV", "development")
    env.delenv("GATEWAY_SIGNING_KEY_FILE")
    env.setenv("GATEWAY_DEV_ISSUER", "1")
    app = start()
    assert "gateway.dev_key" in app.extensions
    assert (tmp_path / "instance" / "signing-key.pem").exists()
