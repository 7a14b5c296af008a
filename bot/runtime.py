"""Per-process services for job code: built once from the environment, then kept warm."""

from __future__ import annotations

from bot.services import Services, build_services
from bot.settings import Settings

_current: Services | None = None


def current() -> Services:
    """This worker process's services (the web process uses app.extensions instead)."""
    global _current
    if _current is None:
        _current = build_services(Settings())
    return _current


def use(services: Services | None) -> None:
    """Run job code in this process against given services (tests and in-process workers)."""
    global _current
    _current = services
