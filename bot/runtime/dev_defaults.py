"""Embedded defaults for development: a private Valkey, and per-install secrets (never shared ones)."""

from __future__ import annotations

import secrets
from pathlib import Path

from bot.settings import Settings


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
