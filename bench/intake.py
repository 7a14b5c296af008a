"""Intake throughput (issue #2): accepted leads/s under gunicorn, next to the bare floor.

Measures POST /leads on leadbot (embedded defaults: SQLite under a temp dir, a private Valkey,
gunicorn sync workers = cores) with 8 and 32 concurrent clients, and in the same run the floor
(bench/floor.py): insert + enqueue, and insert alone. Job workers are not running, so the web tier
is measured alone. After each run the stack is stopped and the DB is checked: every 202'd lead
must be there. Uses wrk when installed (a Lua script makes every phone unique), else a Python
client in several processes.

    .venv/bin/python bench/intake.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from common import (
    API_KEY,
    CORES,
    CpuWatch,
    FakeTwilio,
    Stack,
    embedded_valkey,
    emit,
    fmt,
    lead_json,
    machine_line,
    markdown_table,
    percentile,
    start_floor,
    start_leadbot,
    temp_dir,
    us_numbers,
    wait_for_quiet,
)

THROUGHPUT_TARGET = 0.5  # leadbot must accept at least half the floor's (insert + enqueue) req/s

WRK_SCRIPT = r"""
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path, key, outdir, stride = args[1], args[2], args[3], tonumber(args[4])
  accepted, other = 0, 0
  ids = io.open(outdir .. "/ids-" .. tid .. ".txt", "w")
  ids:setvbuf("line")
end

function request()
  local n = tid * stride + counter
  counter = counter + 1
  local phone = string.format("+1512%03d%04d", 550 + math.floor(n / 10000), n % 10000)
  local body = '{"name": "Bench Lead", "phone": "' .. phone .. '", "email": "bench@example.com", '
    .. '"service": "roofing", "consent": true, "source": "bench"}'
  return wrk.format("POST", path, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. key}, body)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    local id = string.match(body, '"id":%s*"(%w+)"')
    if id then ids:write(id, "\n") end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local acc, oth = 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    oth = oth + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f %d\n", summary.requests, summary.duration, acc, oth,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Load:
    """What one load run produced."""

    seconds: float
    accepted: int
    other: int
    errors: int
    p50_ms: float
    p99_ms: float
    ids: set[str]
    tool: str
    other_load: float = 0.0  # share of the machine other people's processes used meanwhile


@dataclass
class Row:
    """One measured line of the table."""

    stack: str
    clients: int
    load: Load
    rows: int
    missing: int


def wrk_load(port: int, path: str, clients: int, seconds: float, work: Path) -> Load:
    """Closed-loop load with wrk; every request carries a unique phone."""
    script = work / "intake.lua"
    script.write_text(WRK_SCRIPT)
    threads = min(clients, CORES)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds:g}s", "--timeout", "10s", "-s",
         str(script), f"http://127.0.0.1:{port}", "--", path, API_KEY, str(work), str(100_000 // threads)],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    m = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)$", out, re.M)
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    _req, dur_us, acc, other, p50, p99, errors = m.groups()
    ids = {line for f in work.glob("ids-*.txt") for line in f.read_text().split()}
    return Load(int(dur_us) / 1e6, int(acc), int(other), int(errors), float(p50) / 1000, float(p99) / 1000,
                ids, "wrk")


def _client_proc(port: int, path: str, phones: list[str], threads: int, seconds: float, out) -> None:  # noqa: ANN001
    """One client process: `threads` closed-loop clients, each a fresh connection per request."""
    import threading

    lock = threading.Lock()
    acc: list[str] = []
    lat: list[float] = []
    other = [0]
    it = iter(phones)
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}

    def loop() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                phone = next(it)
            t = time.perf_counter()
            conn.request("POST", path, body=lead_json(phone), headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            dt = time.perf_counter() - t
            with lock:
                if resp.status == 202:
                    acc.append(re.search(rb'"id":\s*"(\w+)"', body).group(1).decode())
                    lat.append(dt)
                else:
                    other[0] += 1
        conn.close()

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((acc, lat, other[0]))


def python_load(port: int, path: str, clients: int, seconds: float) -> Load:
    """Closed-loop load from several Python processes (slower than wrk: it shares the cores)."""
    procs_n = min(clients, max(2, CORES))
    per = 100_000 // procs_n
    q: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(
        target=_client_proc,
        args=(port, path, us_numbers(per, i * per), clients // procs_n + (i < clients % procs_n), seconds, q),
    ) for i in range(procs_n)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    parts = [q.get(timeout=seconds + 60) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    ids = [i for a, _, _ in parts for i in a]
    lat = [x * 1000 for _, ls, _ in parts for x in ls]
    return Load(elapsed, len(ids), sum(o for _, _, o in parts), 0, percentile(lat, 50), percentile(lat, 99),
                set(ids), "python")


def db_ids(db: Path) -> set[str]:
    """Every lead id in a leadbot or floor SQLite file (both name the table `leads`)."""
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM leads")}
    finally:
        conn.close()


def measure(stack_name: str, clients: int, seconds: float, tmp: Path, url: str, twilio: str, web: int,
            tool: str, run: int, quiet_wait: float) -> Row:
    """Start a fresh stack (new DB), load it, stop it, and check durability."""
    redis.Redis.from_url(url).flushall()
    data, work = tmp / f"run{run}", tmp / f"run{run}-load"
    work.mkdir(parents=True)
    if stack_name == "leadbot":
        stack: Stack = start_leadbot(data, url, twilio, tmp, web, None, with_worker=False)
        path, db = "/leads", data / "leadbot.db"
    else:
        stack = start_floor(data, url, twilio, tmp, web, 0, with_worker=False)
        path, db = ("/insert" if stack_name.endswith("insert") else "/lead"), data / "floor.db"
    with stack:
        try:
            wait_for_quiet(quiet_wait)
            watch = CpuWatch()
            load = (wrk_load(stack.port, path, clients, seconds, work) if tool == "wrk"
                    else python_load(stack.port, path, clients, seconds))
            load.other_load = watch.other_load()
        except BaseException:
            print(stack.logs(), file=sys.stderr)
            raise
    stored = db_ids(db)  # after a clean stop: whatever gunicorn committed is in the file
    row = Row(stack_name, clients, load, len(stored), len(load.ids - stored))
    print(f"  {stack_name:22} c={clients:<3} {load.accepted / load.seconds:7.0f} req/s  "
          f"p50 {fmt(load.p50_ms)} ms  "
          f"p99 {fmt(load.p99_ms)} ms  202s {load.accepted}  rows {row.rows}  missing {row.missing}  "
          f"other load {load.other_load:.0%}", flush=True)
    return row


def table(rows: list[Row]) -> str:
    """One line per stack and client count, with leadbot's share of the floor."""
    floor = {r.clients: r.load.accepted / r.load.seconds for r in rows
             if r.stack == "floor: insert + enqueue"}
    out, verdicts = [], []
    for r in rows:
        rate = r.load.accepted / r.load.seconds
        share = f"{rate / floor[r.clients]:.0%}" if r.clients in floor else ""
        durable = "yes" if r.missing == 0 and r.load.accepted <= r.rows else f"NO ({r.missing} lost)"
        out.append([r.stack, str(r.clients), f"{rate:,.0f}", fmt(r.load.p50_ms), fmt(r.load.p99_ms),
                    f"{r.load.accepted:,}", f"{r.rows:,}", durable, share, f"{r.load.other_load:.0%}"])
        if r.stack == "leadbot" and r.clients in floor:
            ok = rate >= THROUGHPUT_TARGET * floor[r.clients] and r.missing == 0
            verdicts.append(f"{r.clients} clients: {rate / floor[r.clients]:.0%} of the floor "
                            f"(≥ {THROUGHPUT_TARGET:.0%}) — {'met' if ok else 'MISSED'}")
    text = markdown_table(["stack", "clients", "req/s", "p50 ms", "p99 ms", "202s", "rows in DB",
                           "every 202 in DB", "vs floor", "other load"], out)
    tool = rows[0].load.tool if rows else "?"
    note = ("rows in DB may exceed 202s by up to the client count: requests in flight when the load "
            "stopped were committed but their replies were not read. 'other load' is the share of the "
            "machine that processes outside the bench used during the run (noise)")
    return (text + ("\n\nTargets: " + "; ".join(verdicts) + "." if verdicts else "")
            + f"\n\nClient: {tool}; {note}.\n\nMachine: {machine_line()}.")


def main(argv: list[str] | None = None) -> int:
    """Run the floor (insert only, insert + enqueue) and leadbot at each client count."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s per run instead of 10")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per run (default 10)")
    ap.add_argument("--clients", default="8,32", help="comma-separated client counts (default 8,32)")
    ap.add_argument("--web-workers", type=int, default=CORES, help="gunicorn sync workers (default: cores)")
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                    help="load generator (auto: wrk when installed)")
    ap.add_argument("--quiet-wait", type=float, default=None,
                    help="wait up to this many seconds for other processes to go quiet before each run "
                         "(default 60, 10 with --quick)")
    ap.add_argument("--only", choices=["floor", "leadbot"], help="run one stack")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    seconds = 3.0 if args.quick else args.seconds
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (10 if args.quick else 60)
    tool = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "python")
    stacks = ["floor: insert only", "floor: insert + enqueue", "leadbot"]
    stacks = [s for s in stacks if args.only is None or s.startswith(args.only)]
    rows: list[Row] = []
    with temp_dir("leadbot-intake-") as tmp, FakeTwilio() as fake, embedded_valkey(tmp / "valkey") as url:
        print(f"intake: {machine_line()}; gunicorn sync workers={args.web_workers}; client {tool}",
              flush=True)
        for clients in (int(c) for c in args.clients.split(",")):
            for name in stacks:
                rows.append(measure(name, clients, seconds, tmp, url, fake.url, args.web_workers, tool,
                                    len(rows), quiet_wait))
    text = table(rows)
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
