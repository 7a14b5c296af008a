"""Settings: production refuses to start without secrets; development has no shared default secrets."""

from __future__ import annotations

import pytest

from bot.runtime import dev_defaults
from bot.settings import ConfigError, Settings


def test_production_lists_every_missing_secret():
    with pytest.raises(ConfigError) as err:
        Settings(LEADBOT_ENV="production", TWILIO_ACCOUNT_SID="AC1", SECRET_KEY="s").check()
    msg = str(err.value)
    for name in ("LEAD_API_KEYS", "PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN",
                 "TWILIO_PHONE_NUMBER", "SMTP_URL"):
        assert name in msg
    assert "SECRET_KEY" not in msg and "TWILIO_ACCOUNT_SID" not in msg


def test_production_complete_passes():
    Settings(LEADBOT_ENV="production", SECRET_KEY="s", LEAD_API_KEYS="k", PUBLIC_BASE_URL="https://x",
             DATABASE_URL="postgresql://x", REDIS_URL="redis://x", TWILIO_ACCOUNT_SID="AC1",
             TWILIO_AUTH_TOKEN="t", TWILIO_PHONE_NUMBER="+15125550000", SMTP_URL="smtp://x").check()


def test_create_app_refuses_production_without_secrets():
    from app import create_app

    with pytest.raises(ConfigError, match="LEAD_API_KEYS"):
        create_app(Settings(LEADBOT_ENV="production"))


def test_dev_secrets_are_random_per_install(tmp_path):
    a = dev_defaults.apply(Settings(LEADBOT_DATA_DIR=str(tmp_path / "a"), REDIS_URL="redis://x"))
    b = dev_defaults.apply(Settings(LEADBOT_DATA_DIR=str(tmp_path / "b"), REDIS_URL="redis://x"))
    assert a.api_keys and b.api_keys and a.api_keys != b.api_keys and a.secret_key != b.secret_key
    again = dev_defaults.apply(Settings(LEADBOT_DATA_DIR=str(tmp_path / "a"), REDIS_URL="redis://x"))
    assert again.api_keys == a.api_keys  # stable across restarts
    assert oct((tmp_path / "a" / "dev_api_key").stat().st_mode)[-3:] == "600"


def test_api_keys_split_and_trimmed():
    assert Settings(LEAD_API_KEYS=" a, b ,,c").api_keys == ["a", "b", "c"]


def test_embedded_valkey_is_shared_and_persistent(tmp_path):
    import redis

    from bot.runtime.embedded_valkey import start_embedded

    url, server = start_embedded(tmp_path / "valkey")
    try:
        again, second = start_embedded(tmp_path / "valkey")
        assert again == url and second is None  # the second process reuses the running server
        conn = redis.Redis.from_url(url)
        assert conn.config_get("appendonly")["appendonly"] == "yes"
        conn.set("k", "v")
    finally:
        server.stop()
    url2, server2 = start_embedded(tmp_path / "valkey")
    try:
        assert redis.Redis.from_url(url2).get("k") == b"v"  # AOF brought it back
    finally:
        server2.stop()
