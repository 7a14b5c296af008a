"""Registry: hot reload, last-good-version on broken edits, version pinning, routing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.flows import engine
from bot.flows.engine import Event
from bot.flows.errors import FlowNotFound
from bot.flows.loader import version_of
from bot.flows.registry import FlowRegistry

from .conftest import LEAD, SHIPPED


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped flows."""
    for path in SHIPPED.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    """Change a file and move its mtime forward, as an editor save would."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_loads_flows_not_routing_and_reports_versions(folder: Path) -> None:
    seen: list[tuple[str, str, str]] = []
    reg = FlowRegistry(folder, on_new_version=lambda fid, ver, src, path: seen.append((fid, ver, path)))
    assert reg.ids() == ["prequal", "roofing"]
    prequal = reg.current("prequal")
    assert prequal.version == version_of((folder / "prequal.yaml").read_bytes())
    assert sorted(fid for fid, _, _ in seen) == ["prequal", "roofing"]
    assert (prequal.id, prequal.version, str(folder / "prequal.yaml")) in seen
    with pytest.raises(FlowNotFound):
        reg.current("routing")


def test_valid_edit_is_picked_up_once_per_second(folder: Path) -> None:
    clock = Clock()
    seen: list[str] = []
    reg = FlowRegistry(folder, on_new_version=lambda fid, ver, src, path: seen.append(ver), clock=clock)
    old = reg.current("prequal")
    edit(folder / "prequal.yaml", "I have four quick questions", "I have 4 quick questions")
    clock.now += 0.5
    assert reg.current("prequal") is old  # not re-checked within the second
    clock.now += 0.6
    new = reg.current("prequal")
    assert new.version != old.version and "I have 4 quick" in new.source
    assert seen.count(new.version) == 1
    clock.now += 2
    assert reg.current("prequal") is new and seen.count(new.version) == 1  # unchanged file: no new callback


def test_broken_edit_keeps_the_working_version(folder: Path) -> None:
    reg = FlowRegistry(folder)
    good = reg.current("prequal")
    text = (folder / "prequal.yaml").read_text(encoding="utf-8")
    line = text[: text.index("no: outcome:not_a_fit")].count("\n") + 1
    edit(folder / "prequal.yaml", "no: outcome:not_a_fit", "no: outcome:not_a_fitt")
    reg.refresh(force=True)
    assert reg.current("prequal") is good
    assert [str(e) for e in reg.errors[str(folder / "prequal.yaml")]] == [
        f"{folder / 'prequal.yaml'}:{line}: steps.need.on.no: unknown outcome 'not_a_fitt'"
    ]
    edit(folder / "prequal.yaml", "not_a_fitt", "not_a_fit")
    reg.refresh(force=True)
    assert reg.current("prequal").version == good.version and reg.errors == {}


def test_state_started_on_a_version_continues_on_it(folder: Path) -> None:
    reg = FlowRegistry(folder)
    v1 = reg.current("prequal")
    state, _, _ = engine.start(v1, LEAD, "sms")
    edit(folder / "prequal.yaml", "Roughly what budget do you have in mind?", "What is your budget?")
    reg.refresh(force=True)
    v2 = reg.current("prequal")
    assert v2.version != v1.version
    pinned = reg.get(state["flow_id"], state["version"])
    assert pinned is v1
    _, prompts, _ = engine.step(pinned, state, Event.answer("yes"))
    assert prompts[0].text.startswith("Roughly what budget")
    fresh, _, _ = engine.start(v2, LEAD, "sms")
    _, prompts, _ = engine.step(v2, fresh, Event.answer("yes"))
    assert prompts[0].text.startswith("What is your budget?")


def test_unknown_versions_are_rebuilt_from_the_source_loader(folder: Path) -> None:
    stored: dict[str, str] = {}
    FlowRegistry(folder, on_new_version=lambda fid, ver, src, path: stored.setdefault(ver, src))
    version = version_of((folder / "roofing.yaml").read_bytes())
    other_process = FlowRegistry(folder / "empty-dir-does-not-exist", source_loader=stored.get)
    flow = other_process.get("roofing", version)
    assert flow.id == "roofing" and flow.version == version
    with pytest.raises(FlowNotFound):
        other_process.get("prequal", version)  # a version of another flow
    with pytest.raises(FlowNotFound):
        other_process.get("roofing", "f" * 64)
    tampered = FlowRegistry(folder, source_loader=lambda v: stored[version] + "\n# edited")
    with pytest.raises(FlowNotFound):
        tampered.get("roofing", "e" * 64)


def test_deleted_file_retires_the_flow_but_not_its_versions(folder: Path) -> None:
    reg = FlowRegistry(folder)
    roofing = reg.current("roofing")
    (folder / "roofing.yaml").unlink()
    reg.refresh(force=True)
    with pytest.raises(FlowNotFound):
        reg.current("roofing")
    assert reg.get("roofing", roofing.version) is roofing
    assert reg.choose("roofing") == "prequal"  # the route falls through to the default


def test_duplicate_flow_id_in_two_files_is_an_error(folder: Path) -> None:
    shutil.copy(folder / "roofing.yaml", folder / "zz_copy.yaml")
    edit(folder / "zz_copy.yaml", "title: Roofing estimate", "title: Copy")
    reg = FlowRegistry(folder)
    assert reg.current("roofing").title == "Roofing estimate"
    assert "already used by" in str(reg.errors[str(folder / "zz_copy.yaml")][0])


@pytest.mark.parametrize(
    ("service", "source", "expected"),
    [
        ("Roofing", None, "roofing"),
        ("  ROOF   repair ", "web", "roofing"),
        (None, "Roofing-Landing-Page", "roofing"),
        ("plumbing", "google", "prequal"),
        (None, None, "prequal"),
    ],
)
def test_choose_by_service_then_source(service: str | None, source: str | None, expected: str) -> None:
    assert FlowRegistry(SHIPPED).choose(service, source) == expected


def test_routing_to_a_missing_flow_is_reported_and_falls_through(folder: Path) -> None:
    (folder / "routing.yaml").write_text("default: prequal\nby_service:\n  solar: solar\n", encoding="utf-8")
    reg = FlowRegistry(folder)
    assert reg.choose("solar") == "prequal"
    assert [str(e) for e in reg.errors[str(folder / "routing.yaml")]] == [
        f"{folder / 'routing.yaml'}:3: by_service.solar: unknown flow 'solar'"
    ]
