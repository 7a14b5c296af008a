"""A roster that does not load is an outage: staff emails are checked for syntax only, the processes
refuse to start with every error as file:line, a later bad edit shows as stale on /healthz, and
`leadbot roster check` validates a file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from handoff.roster import load_roster
from tests.procs import BIN, ROOT, Stack, free_port
from tests.test_e2e import stack_env

INTERNAL = """\
managers:
  - {name: Morgan Vale, email: morgan@example.test, phone: "+15125550190"}
  - {name: Riley Park, email: riley@corp.local}
salespeople:
  - {name: Sam Stone, phone: "+15125550101", email: sam@corp.local, services: [roofing]}
  - {name: Lee Lane, phone: "+15125550102", email: lee@sales.internal, services: [roofing]}
  - {name: Kim Kerr, phone: "+15125550103", email: kim@example.com, services: [roofing]}
"""

UNUSABLE = """\
managers:
  - {name: Morgan Vale, email: morgan@example.test}
salespeople:
  - {name: Sam Stone, phone: "+15125550101", email: sam@corp.local, services: [roofing]}
  - {name: Jo Jones, phone: "call me", email: jo, services: [roofing]}
"""
ERRORS = ["roster.yaml:5: salespeople[1].phone: not a valid phone number 'call me'",
          "roster.yaml:5: salespeople[1].email: not a valid email address 'jo'"]


def test_staff_emails_at_internal_and_reserved_domains_load(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(INTERNAL)
    roster = load_roster(path)
    assert [m.email for m in roster.managers] == ["morgan@example.test", "riley@corp.local"]
    assert roster.managers[0].phone == "+15125550190" and roster.managers[1].phone is None
    assert [r.email for r in roster.salespeople] == ["sam@corp.local", "lee@sales.internal",
                                                     "kim@example.com"]


def test_roster_check_validates_a_file_like_flows_check(tmp_path: Path) -> None:
    bad, good = tmp_path / "roster.yaml", tmp_path / "good.yaml"
    bad.write_text(UNUSABLE)
    good.write_text(INTERNAL)
    out = subprocess.run([str(BIN / "leadbot"), "roster", "check", str(bad)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    for error in ERRORS:
        assert f"{tmp_path}/{error}" in out.stdout
    assert "2 error(s)" in out.stdout
    ok = subprocess.run([str(BIN / "leadbot"), "roster", "check", str(good)], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and "3 salespeople" in ok.stdout
    shipped = subprocess.run([str(BIN / "leadbot"), "roster", "check"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
    assert shipped.returncode == 0, shipped.stdout
    assert "$(BIN)/leadbot roster check" in (ROOT / "Makefile").read_text()


def run_until_exit(args: list[str], env: dict[str, str], timeout: float = 45) -> subprocess.CompletedProcess:
    """Run a process that must exit on its own; one still running after ``timeout`` fails the test."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the servers it started go too
        output, _ = proc.communicate()
        raise AssertionError(f"{args[0]} started with an unusable roster:\n{output[-2000:]}") from None
    return subprocess.CompletedProcess(args, proc.returncode, output)


def test_web_worker_and_run_refuse_to_start_with_an_unusable_roster(tmp_path, db_url, redis_url, emulator):
    roster = tmp_path / "roster.yaml"
    roster.write_text(UNUSABLE)
    port = free_port()
    env = {**Stack(stack_env(tmp_path, db_url, redis_url, emulator), tmp_path).env,
           "ROSTER_PATH": str(roster)}
    web = run_until_exit([str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                          "app:create_app()"], env)
    worker = run_until_exit([str(BIN / "leadbot"), "worker", "--processes", "1"], env)
    run = run_until_exit([str(BIN / "leadbot"), "run"], {**env, "PORT": str(free_port())})
    for name, result in (("web", web), ("worker", worker), ("run", run)):
        assert result.returncode != 0, name
        for error in ERRORS:
            assert error in result.stdout, (name, result.stdout[-2000:])


def test_a_later_bad_edit_keeps_the_last_good_roster_and_healthz_says_stale(tmp_path, db_url, redis_url,
                                                                            emulator):
    roster = tmp_path / "roster.yaml"
    roster.write_text(INTERNAL)
    env = {**stack_env(tmp_path, db_url, redis_url, emulator), "ROSTER_PATH": str(roster)}
    stack = Stack(env, tmp_path).start()
    try:
        health = requests.get(stack.url + "/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["roster"] == "ok"
        roster.write_text(UNUSABLE)
        deadline = time.monotonic() + 10
        while (body := requests.get(stack.url + "/healthz", timeout=5).json())["roster"] == "ok":
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert body["roster"] == "stale" and body["ok"] is True
        assert [e.split("/")[-1][: len(ERRORS[0])] for e in body["roster_errors"]][:1] == [ERRORS[0]]
        assert len(body["roster_errors"]) == 2
        roster.write_text(INTERNAL + "\n")  # fixed: a new size, so the file is read again
        assert requests.get(stack.url + "/healthz", timeout=5).json()["roster"] == "ok"
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
