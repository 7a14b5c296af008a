"""`leadbot run`'s process supervisor: Valkey, workers and web up in that order, down in the reverse.

Every child gets its own session, so a Ctrl-C at the terminal reaches only the supervisor, which then
stops web first (no new leads), then the workers (each finishes its job), then Valkey last: a
Valkey stopped before the workers made every worker print Redis tracebacks.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

WEB_STOP_S = 10.0  # gunicorn's own graceful timeout is 30 s; a request here takes milliseconds
WORKER_STOP_S = 35.0  # a job's timeout is 30 s: a worker in the middle of one gets to finish it
VALKEY_STOP_S = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_make() -> None:
    """Under `make run`, get SIGTERM when make dies: make does not pass a `kill` on to its children.

    Only under make: a `nohup leadbot run &` must outlive its shell. Linux only; elsewhere a no-op.
    """
    try:
        parent = Path(f"/proc/{os.getppid()}/comm").read_text().strip()
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return
    if parent == "make":
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # make died before the call: nobody will send the signal
            os.kill(os.getpid(), signal.SIGTERM)


class AlreadyRunning(RuntimeError):
    """Another `leadbot run` holds this data directory."""


@contextlib.contextmanager
def single_instance(data_dir: Path) -> Iterator[None]:
    """Hold data_dir/run.lock for the life of the run; raise AlreadyRunning naming the holder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "run.pid"
    with open(data_dir / "run.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() if path.exists() else "?"
            raise AlreadyRunning(f"leadbot is already running (pid {holder}) on {data_dir}; stop it first "
                                 f"(Ctrl-C in its terminal, or kill {holder})") from None
        path.write_text(str(os.getpid()))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def procfile(path: Path) -> dict[str, str]:
    """The Procfile's `name: command` lines."""
    entries = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


class Supervisor:
    """Start children in order, stop them in reverse on a signal (or when one of them dies)."""

    def __init__(self, env: dict[str, str], cwd: Path, out: IO[str] | None = None) -> None:
        self.env, self.cwd, self.out = env, cwd, out or sys.stdout
        self.children: list[tuple[str, subprocess.Popen, float]] = []
        self.stopping = threading.Event()
        self.signal_name: str | None = None

    def say(self, message: str) -> None:
        print(f"leadbot: {message}", file=self.out, flush=True)

    def spawn(self, name: str, args: list[str], stop_within: float,
              stdout: int | None = None) -> subprocess.Popen:
        """Start a child in its own session (terminal signals go to the supervisor only)."""
        proc = subprocess.Popen(args, env=self.env, cwd=self.cwd, start_new_session=True, stdout=stdout)
        self.children.append((name, proc, stop_within))
        return proc

    def shell(self, name: str, command: str, stop_within: float) -> subprocess.Popen:
        """A Procfile command through sh, exec'd so the signal reaches the program itself."""
        return self.spawn(name, ["/bin/sh", "-c", f"exec {command}"], stop_within)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping.is_set():
            self.signal_name = signal.Signals(signum).name
        self.stopping.set()

    def install_signals(self) -> None:
        """From here on SIGTERM, SIGINT and SIGHUP start an orderly stop (also when make is killed)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        stop_with_make()

    def wait(self) -> int:
        """Until a signal or a child's exit; then stop everything. 0 after a signal, 1 if a child died."""
        died = None
        while not self.stopping.wait(0.2):
            died = next(((n, p) for n, p, _ in self.children if p.poll() is not None), None)
            if died:
                self.say(f"{died[0]} exited with status {died[1].returncode}; stopping the rest")
                break
        if self.signal_name:
            self.say(f"{self.signal_name}: stopping web, then workers, then Valkey")
        self.stop()
        return 1 if died and not self.signal_name else 0

    def stop(self) -> None:
        """Newest first: web, workers, then Valkey; each gets SIGTERM, then SIGKILL after its time."""
        for name, proc, within in reversed(self.children):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=within)
                except subprocess.TimeoutExpired:
                    self.say(f"{name} did not stop within {within:.0f} s: killing it")
            # Whatever it forked (gunicorn's and the pool's workers) shares its process group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        self.children.clear()
