"""Embedded defaults for development: a private Valkey, and per-install secrets (never shared ones)."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Container
from pathlib import Path

from bot.settings import Settings

# A proxy on this machine makes every client look local; these headers say it forwarded someone.
FORWARDING_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def local_client(remote_addr: str | None, headers: Container[str]) -> bool:
    """True for a client on this machine that no proxy forwarded: who may see development secrets."""
    if any(h in headers for h in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(remote_addr or "").is_loopback
    except ValueError:
        return False


def generated_key(settings: Settings) -> str | None:
    """The development API key when it is the one generated under the data dir, else None.

    A key someone set in LEAD_API_KEYS is a real key, and is never shown.
    """
    path = Path(settings.data_dir) / "dev_api_key"
    if settings.production or not settings.api_keys or not path.exists():
        return None
    key = path.read_text().strip()
    return key if settings.api_keys == [key] else None


def _secret_file(path: Path, nbytes: int = 24) -> str:
    """Read a per-install secret, creating it on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


def apply(settings: Settings) -> Settings:
    """Fill what development leaves unset; production must set everything (Settings.check)."""
    if settings.production:
        return settings
    updates: dict[str, object] = {}
    data = Path(settings.data_dir)
    if not settings.redis_url:
        from bot.runtime.embedded_valkey import start_embedded

        updates["redis_url"], _ = start_embedded(data / "valkey")
    if not settings.lead_api_keys:
        updates["lead_api_keys"] = _secret_file(data / "dev_api_key")
    if not settings.secret_key:
        updates["secret_key"] = _secret_file(data / "secret_key", 32)
    return settings.model_copy(update=updates) if updates else settings
