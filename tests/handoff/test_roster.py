"""Roster loading: the sample file, exact file:line errors, and YAML round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.roster import RosterError, load_roster

SAMPLE = Path(__file__).resolve().parents[2] / "handoff" / "roster.yaml"

BROKEN = """\
managers:
  - name: Priya Natarajan
    email: priya@example.com
salespeople:
  - name: Dana Reyes
    phone: "+1 512-555-0142"
    email: dana@example.com
    services: [roofing]
  - name: Marcus Hill
    phone: "214 555 0187"
    email: marcus@example.com
    services: roofing
  - name: Short Phone
    phone: "+1555"
    email: short@example.com
    services: [roofing]
  - name: Many Mistakes
    phone: "+1 602-555-0119"
    email: not-an-email
    territory: [AZ]
    territories: [AZ, XX, "512"]
    weight: 0
    active: maybe
    hours:
      timezone: Mars/Olympus
      mon-fri: "18:00-08:00"
      fri: "09:00-10:00"
"""


def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    """Write handoff/roster.yaml under tmp_path and return the relative path errors will show."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handoff").mkdir(exist_ok=True)
    (tmp_path / "handoff" / "roster.yaml").write_text(text)
    return "handoff/roster.yaml"


def errors_of(path: str) -> list[str]:
    """The errors load_roster raises for a file."""
    with pytest.raises(RosterError) as info:
        load_roster(path)
    return info.value.errors


def test_sample_roster_loads_with_normalized_phones() -> None:
    roster = load_roster(SAMPLE)
    dana = roster.rep("Dana Reyes")
    assert dana.phone == "+15125550142"
    assert dana.territories == ("TX", "512", "737")
    assert dana.languages == ("en", "es")
    assert roster.rep("+12145550187").weight == 2
    assert not roster.rep("Lena Fischer").active
    assert roster.rep("Ana Souza").hours is not None


def test_every_error_is_reported_at_once_with_file_and_line(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    errors = errors_of(write(tmp_path, monkeypatch, BROKEN))
    assert errors[0] == "handoff/roster.yaml:14: salespeople[2].phone: not a valid phone number '+1555'"
    assert errors[1] == ("handoff/roster.yaml:20: salespeople[3].territory: unknown key 'territory' "
                         "(expected one of: name, phone, email, services, territories, languages, hours, "
                         "weight, priority, capacity, active, team)")
    assert errors[2].startswith("handoff/roster.yaml:19: salespeople[3].email: not a valid email address "
                                "'not-an-email'")
    assert errors[3:] == [
        "handoff/roster.yaml:17: salespeople[3]: required key 'services' not provided",
        "handoff/roster.yaml:21: salespeople[3].territories[1]: unknown territory 'XX' (use a state/province "
        "code like TX, a 3-digit area code like 512, or a country code like +44)",
        "handoff/roster.yaml:22: salespeople[3].weight: expected a whole number >= 1, got 0",
        "handoff/roster.yaml:23: salespeople[3].active: expected true or false, got 'maybe'",
        "handoff/roster.yaml:25: salespeople[3].hours.timezone: unknown time zone 'Mars/Olympus'",
        "handoff/roster.yaml:26: salespeople[3].hours.mon-fri: window '18:00-08:00' ends before it starts "
        "(split overnight shifts)",
    ]


def test_lone_service_string_counts_as_a_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = BROKEN.split("  - name: Short Phone")[0]
    roster = load_roster(write(tmp_path, monkeypatch, good))
    assert roster.rep("Marcus Hill").services == ("roofing",)
    assert roster.rep("Marcus Hill").phone == "+12145550187"


def test_cross_references_and_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = """\
managers:
  - {name: Priya, email: priya@example.com}
teams:
  - name: Central
    managers: [Priya, Nobody]
salespeople:
  - name: Dana Reyes
    phone: "+1 512-555-0142"
    email: dana@example.com
    services: [roofing]
    team: Night
  - name: Dana Reyes
    phone: "(512) 555-0142"
    email: dana2@example.com
    services: [roofing]
"""
    assert errors_of(write(tmp_path, monkeypatch, text)) == [
        "handoff/roster.yaml:5: teams[0].managers[1]: unknown manager 'Nobody' (known: Priya)",
        "handoff/roster.yaml:11: salespeople[0].team: unknown team 'Night' (known: Central)",
        "handoff/roster.yaml:13: salespeople[1].phone: duplicate phone '+15125550142', "
        "also used by salespeople[0]",
        "handoff/roster.yaml:12: salespeople[1].name: duplicate name 'Dana Reyes', "
        "also used by salespeople[0]",
    ]


def test_missing_top_level_keys_and_unknown_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "sla_minutes: 0\nsalesperson: []\n"
    assert errors_of(write(tmp_path, monkeypatch, text)) == [
        "handoff/roster.yaml:2: salesperson: unknown key 'salesperson' (expected one of: managers, "
        "salespeople, teams, sla_minutes)",
        "handoff/roster.yaml:1: sla_minutes: expected a number above 0, got 0",
        "handoff/roster.yaml:1: (top level): required key 'managers' not provided",
        "handoff/roster.yaml:1: (top level): required key 'salespeople' not provided",
    ]


def test_yaml_syntax_error_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "managers:\n  - name: Priya\n    email: [unclosed\nsalespeople: []\n"
    [error] = errors_of(write(tmp_path, monkeypatch, text))
    assert error.startswith("handoff/roster.yaml:4: YAML syntax error:")


def test_unquoted_on_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SAMPLE.read_text().replace("territories: [TX, OK]", "territories: [ON, QC]")
    [error] = errors_of(write(tmp_path, monkeypatch, text))
    assert error.endswith("salespeople[1].territories[0]: YAML read an unquoted ON/OFF/YES/NO as true; "
                          'quote it, e.g. "ON"')


def test_missing_file_is_a_roster_error(tmp_path: Path) -> None:
    [error] = errors_of(str(tmp_path / "nope.yaml"))
    assert "nope.yaml: cannot read roster" in error


def test_to_yaml_round_trips(tmp_path: Path) -> None:
    roster = load_roster(SAMPLE)
    out = tmp_path / "exported.yaml"
    out.write_text(roster.to_yaml())
    again = load_roster(out)
    assert again == roster
    assert again.to_yaml() == roster.to_yaml()
    assert "mon-fri: 08:00-12:00, 13:00-17:00" in roster.to_yaml()


def test_team_managers_and_sla() -> None:
    roster = load_roster(SAMPLE)
    ana, lena = roster.rep("Ana Souza"), roster.rep("Lena Fischer")
    assert [m.name for m in roster.managers_for(ana)] == ["Tom Becker"]
    assert roster.sla_seconds_for(ana) == 240
    assert [m.name for m in roster.managers_for(lena)] == ["Priya Natarajan", "Tom Becker"]
    assert roster.sla_seconds_for(lena) == 300
