"""Start the real web (gunicorn) and worker processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """gunicorn + `leadbot worker` as child processes, sharing one environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PUBLIC_BASE_URL": self.url, "HOST": "127.0.0.1", "PORT": str(self.port),
                    **env}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        # A session of its own, so stop() can end whatever it forked (RQ's scheduler) with it.
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self, workers: int = 1, web_workers: int = 2) -> Stack:
        """Start both (web only with workers=0) and wait until /healthz answers."""
        self._spawn("web", [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers",
                            str(web_workers), "app:create_app()"])
        if workers > 0:  # 0: web only (a test starts its workers later)
            self._spawn("worker", [str(BIN / "leadbot"), "worker", "--processes", str(workers)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        logs = self.logs()
        self.stop()
        raise RuntimeError("web did not start:\n" + logs)

    def start_worker(self, name: str, processes: int = 1) -> subprocess.Popen:
        """Another `leadbot worker`, e.g. the one that takes over from a killed worker."""
        return self._spawn(name, [str(BIN / "leadbot"), "worker", "--processes", str(processes)])

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """SIGKILL a worker and the processes it forked (RQ's scheduler): no cleanup runs anywhere."""
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.kill()
        proc.wait(timeout=10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        """Stop each process; then end anything it left behind, which would go on working on the
        shared Valkey (an orphaned RQ scheduler moves later tests' scheduled jobs), and say so."""
        for proc in self.procs:
            proc.terminate()
        left = []
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                left.append(f"{Path(proc.args[0]).name} {proc.args[1]} ({proc.pid}) did not stop in 10 s")
                proc.kill()
                proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # raises if the group is empty, as it should be
                left.append(f"{Path(proc.args[0]).name} {proc.args[1]} ({proc.pid}) left processes running")
        if left:
            warnings.warn("; ".join(left), stacklevel=2)
