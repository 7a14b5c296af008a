"""`leadbot flows check` and `leadbot flows try`."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.flows.cli import main

from .conftest import SHIPPED


def run(argv: list[str], stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_check_shipped_flows_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWS_DIR", str(SHIPPED))
    code, out = run(["check"])
    assert (code, out) == (0, "OK: 2 flow(s) valid (prequal, roofing) and routing.yaml, 3 cadence/nurture file(s)\n")


def test_check_reports_every_error_and_fails(write_flow: Callable[..., Path]) -> None:
    bad = write_flow("""
        id: bad
        steps:
          a:
            prompt: "Hi {{ lead.nmae }}"
            type: yes_no
            on: {yes: bugdet, no: outcome:bye}
        outcomes:
          bye: {say: Bye, action: close}
        """)
    good = SHIPPED / "roofing.yaml"
    code, out = run(["check", str(bad), str(good)])
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:4: steps.a.prompt: unknown variable 'lead.nmae'",
        f"{bad}:6: steps.a.on.yes: unknown step 'bugdet'",
        "2 error(s) in 1 file(s)",
    ]


def test_check_flags_routing_to_a_missing_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prequal.yaml").write_bytes((SHIPPED / "prequal.yaml").read_bytes())
    (tmp_path / "routing.yaml").write_text("default: prequal\nby_source:\n  ads: solar\n", encoding="utf-8")
    monkeypatch.setenv("FLOWS_DIR", str(tmp_path))
    code, out = run(["check"])
    assert code == 1 and f"{tmp_path / 'routing.yaml'}:3: by_source.ads: unknown flow 'solar'" in out


def test_check_empty_folder_and_bad_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWS_DIR", str(tmp_path))
    assert run(["check"]) == (1, f"no flow files found in {tmp_path}\n")
    with pytest.raises(SystemExit) as exc:
        run(["frobnicate"])
    assert exc.value.code == 2


def test_try_chats_to_an_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWS_DIR", str(SHIPPED))
    code, out = run(
        ["try", "prequal", "--name", "Sam Jones", "--service", "solar panels"],
        "yes\n\nfive grand\nright away\nwe decide together\n",
    )
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0] == "bot> Hi Sam, this is the team you just contacted about solar panels. I have four quick "
        "questions so we can help you faster."
    )
    assert "bot> Sorry, what budget are you thinking of?" in out  # the empty line was silence
    assert lines[-2].startswith("outcome: qualified_ready (warm_transfer) - answer 'we decide together'")
    assert lines[-1].startswith("answers: {'need': 'yes', 'budget': {'min': 5000")


def test_try_by_path_and_unfinished_input() -> None:
    code, out = run(["try", str(SHIPPED / "roofing.yaml")], "no\n")
    assert code == 1 and out.endswith("(input ended before the conversation finished)\n")
    assert "Do you own the home?" in out


def test_try_unknown_flow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWS_DIR", str(SHIPPED))
    code, out = run(["try", "solar"])
    assert code == 1 and out.startswith("cannot use flow 'solar': no valid flow 'solar'")
