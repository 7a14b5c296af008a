"""Fixtures for flow tests: the shipped flows, a fixed clock and a helper to write flow files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from textwrap import dedent

import pytest

from bot.flows.loader import require_flow
from bot.flows.model import Flow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "ivr_flows"
# A fixed "now" so timeframe answers (and so outcomes) are deterministic.
NOW = datetime(2025, 3, 10, 12, 0)
LEAD = {
    "name": "Maria Lopez",
    "phone": "+14155552671",
    "email": "maria@example.com",
    "service": "a new roof",
    "source": "web",
    "language": "en",
    "message": "Need a quote",
}


@pytest.fixture(scope="session")
def prequal() -> Flow:
    """The shipped default flow."""
    return require_flow(SHIPPED / "prequal.yaml")


@pytest.fixture(scope="session")
def roofing() -> Flow:
    """The shipped roofing example."""
    return require_flow(SHIPPED / "roofing.yaml")


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented YAML to tmp_path/<name> and return the path."""

    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write
