"""The per-process roster cache: reload on change, keep the last good roster on a bad edit."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from handoff.roster import RosterError
from handoff.roster_cache import rep_for, roster_for

ONE = """\
managers: [{name: Priya Natarajan, email: priya@example.com}]
salespeople:
  - {name: Alice Able, phone: "+15125550101", email: alice@example.com, services: [roofing]}
"""


def svc(path: Path) -> SimpleNamespace:
    return SimpleNamespace(settings=SimpleNamespace(roster_path=path, default_region="US"), extras={})


def touch_later(path: Path, text: str) -> None:
    """Write and move the mtime forward, as a later edit would."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_loaded_once_then_reloaded_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ONE)
    services = svc(path)
    first = roster_for(services)
    assert roster_for(services) is first  # cached, not re-read
    touch_later(path, ONE.replace("Alice Able", "Alice Adams"))
    assert [r.name for r in roster_for(services).salespeople] == ["Alice Adams"]


def test_bad_edit_keeps_the_last_good_roster_and_logs_it_once(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ONE)
    services = svc(path)
    good = roster_for(services)
    touch_later(path, ONE.replace("services: [roofing]", "services: []"))
    with caplog.at_level(logging.ERROR):
        assert roster_for(services) is good
        assert roster_for(services) is good
    errors = [r for r in caplog.records if "keeping the last good roster" in r.getMessage()]
    assert len(errors) == 1 and f"{path}:3: salespeople[0].services" in errors[0].getMessage()
    path.unlink()
    assert roster_for(services) is good


def test_no_valid_roster_ever_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="cannot read roster"):
        roster_for(svc(tmp_path / "missing.yaml"))


def test_rep_for_stands_in_for_someone_who_left(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(ONE)
    roster = roster_for(svc(path))
    assert rep_for(roster, "+15125550101").name == "Alice Able"
    gone = rep_for(roster, "+15125550199", "Zed Zane", "zed@example.com")
    assert (gone.name, gone.email, gone.active) == ("Zed Zane", "zed@example.com", False)
