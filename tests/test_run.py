"""`leadbot run`: a signal stops every process it started, in order and cleanly; a second run refuses."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.procs import BIN, ROOT, free_port

STOP_WITHIN_S = 15


def descendants(pid: int) -> set[int]:
    """Every process below pid (children of children too), from /proc."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            for kid in kids:
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    """`leadbot run` on the embedded defaults (its own Valkey, SQLite, the simulator), on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "REDIS_", "DATABASE_",
                                                                   "LEAD_API", "PUBLIC_BASE"))}
    env.update(LEADBOT_DATA_DIR=str(tmp_path / "var"), PORT=str(free_port()), HOST="127.0.0.1",
               WORKER_PROCESSES="2", WEB_CONCURRENCY="1", LEADBOT_ENV="development")
    return env


def start_run(env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `leadbot run` and wait until its web answers."""
    proc = subprocess.Popen([str(BIN / "leadbot"), "run"], cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['PORT']}/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("leadbot run did not come up:\n" + log.read_text())


def stop_and_check(proc: subprocess.Popen, sig: int, env: dict[str, str], log: Path) -> None:
    """Send sig; within STOP_WITHIN_S every process is gone, both ports are free, the log is clean."""
    children = descendants(proc.pid)
    valkey_port = int((Path(env["LEADBOT_DATA_DIR"]) / "valkey" / "url").read_text().rsplit(":", 1)[1]
                      .split("/")[0])
    assert len(children) >= 4, children  # Valkey, gunicorn and its worker, the worker pool and its workers
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=STOP_WITHIN_S)
    finally:
        for pid in descendants(proc.pid) | children:  # never leave processes behind, pass or fail
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    while any(alive(p) for p in children) and time.monotonic() - started < STOP_WITHIN_S:
        time.sleep(0.1)
    text = log.read_text()
    assert code == 0, text
    assert not [p for p in children if alive(p)], text
    assert port_free(int(env["PORT"])) and port_free(valkey_port), text
    assert "Traceback" not in text, text
    assert "did not stop" not in text, text  # every child stopped on SIGTERM, none was killed
    valkey_log = (Path(env["LEADBOT_DATA_DIR"]) / "valkey" / "valkey.log").read_text()
    assert "Received SIGTERM" in valkey_log and "ready to exit" in valkey_log, valkey_log[-2000:]


def test_sigterm_stops_every_child_cleanly(run_env, tmp_path):
    log = tmp_path / "run.log"
    proc = start_run(run_env, log)
    stop_and_check(proc, signal.SIGTERM, run_env, log)


def test_second_run_says_so_and_exits_then_ctrl_c_stops_the_first(run_env, tmp_path):
    log = tmp_path / "run.log"
    proc = start_run(run_env, log)
    second = subprocess.run([str(BIN / "leadbot"), "run"], cwd=ROOT, env=run_env, capture_output=True,
                            text=True, timeout=30)
    assert second.returncode != 0 and "already running" in second.stderr, second.stderr + second.stdout
    assert f"pid {proc.pid}" in second.stderr
    stop_and_check(proc, signal.SIGINT, run_env, log)


def test_sigterm_to_make_run_stops_everything_too(run_env, tmp_path):
    """`kill <make>` used to end make alone, leaving leadbot run and all of its children serving."""
    makefile = tmp_path / "Makefile"
    makefile.write_text(f"run:\n\t{BIN / 'leadbot'} run\n")
    log = tmp_path / "run.log"
    make = subprocess.Popen(["make", "-s", "-f", str(makefile), "run"], cwd=ROOT, env=run_env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{run_env['PORT']}/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    children = descendants(make.pid)
    assert len(children) >= 5, log.read_text()
    make.send_signal(signal.SIGTERM)
    make.wait(timeout=STOP_WITHIN_S)
    started = time.monotonic()
    while any(alive(p) for p in children) and time.monotonic() - started < STOP_WITHIN_S:
        time.sleep(0.1)
    left = [p for p in children if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, log.read_text()
    assert port_free(int(run_env["PORT"])) and "Traceback" not in log.read_text(), log.read_text()
