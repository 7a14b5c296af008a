"""The retry cadence per team: flow > team > default, and `leadbot flows check` names a team that is not
in the roster at its file:line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main as leadbot
from bot.flows.cadence import load_cadences
from tests.conftest import make_settings
from tests.lifecycle_kit import leg_for, moved_clock, status, work
from tests.test_lifecycle import local, post_lead

SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows"
CADENCES = """\
cadences:
  default:
    touches:
      - call: 2m
  central:
    touches:
      - call: 10m
  roofing_fast:
    touches:
      - call: 1m
flows: {flows}
teams:
  Central: central
"""


def flows_dir(tmp_path: Path, flows: str = "{}") -> Path:
    """The shipped flows, with a cadence file mapping the roster's Central team (and maybe a flow)."""
    folder = tmp_path / "flows"
    shutil.copytree(SHIPPED, folder)
    (folder / "cadence.yaml").write_text(CADENCES.format(flows=flows))
    return folder


@pytest.fixture
def settings(tmp_path, db_url, redis_url, emulator, request):  # noqa: ANN001, ANN201
    flows = getattr(request, "param", "{}")
    return make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS="08:00-21:00",
                         FLOWS_DIR=str(flows_dir(tmp_path, flows)))

@pytest.fixture
def tm(tmp_path, monkeypatch, db_url, services):  # noqa: ANN001, ANN201
    yield from moved_clock(tmp_path, monkeypatch, db_url, services)



def first_retry(client, auth, services, emulator, tm, **fields) -> str:  # noqa: ANN001, ANN003
    lead_id = post_lead(client, auth, **fields)
    work(services)
    status(*leg_for(client, services, emulator), "no-answer")
    return local(tm.next_due(lead_id))


def test_a_teams_cadence_applies_to_the_leads_its_reps_sell_to(client, auth, services, emulator, tm):
    # Gutters in Austin: Dana Reyes (team Central, TX) sells them; the flow (prequal) has no cadence.
    assert first_retry(client, auth, services, emulator, tm, service="gutters") == "Tue 14:10"
    # Solar from an Arizona number: West's reps, and West has no cadence of its own.
    assert first_retry(client, auth, services, emulator, tm, service="solar", phone="+1 602 555 0100",
                       email="sol@example.com") == "Tue 14:02"  # the default (Austin time shown)


@pytest.mark.parametrize("settings", ["{roofing: roofing_fast}"], indirect=True)
def test_the_flows_cadence_comes_before_the_teams(client, auth, services, emulator, tm):
    # Roofing in Austin is Central's too, but the roofing flow names its own cadence.
    assert first_retry(client, auth, services, emulator, tm, service="roofing") == "Tue 14:01"
    assert first_retry(client, auth, services, emulator, tm, service="gutters", phone="+1 512 555 0101",
                       email="g@example.com") == "Tue 14:10"


def test_teams_must_name_a_known_cadence_and_a_roster_team(tmp_path, monkeypatch, capsys):
    folder = flows_dir(tmp_path)
    path = folder / "cadence.yaml"
    path.write_text(CADENCES.format(flows="{}") + "  Nowhere: central\n  West: slow\n")
    _, errors = load_cadences(path)
    assert [str(e) for e in errors] == [f"{path}:15: teams.West: unknown cadence 'slow'"]
    path.write_text(CADENCES.format(flows="{}") + "  Nowhere: central\n")
    monkeypatch.setenv("FLOWS_DIR", str(folder))
    assert leadbot(["flows", "check"]) == 1
    out = capsys.readouterr().out
    assert (f"{path}:14: teams.Nowhere: no team 'Nowhere' in handoff/roster.yaml (teams: Central, West)"
            in out)
