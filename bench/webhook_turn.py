"""One voice turn (issue #3): a signed Gather-action POST with a SpeechResult, answered with TwiML, in ms.

Runs leadbot on its embedded defaults (SQLite under a temp dir, a private Valkey, gunicorn with sync
workers = cores, PUBLIC_BASE_URL = the gunicorn URL), creates one conversation per measured turn
(lead POST -> `leadbot worker` dials the fake Twilio -> the answer webhook at the call's Url), then
sends each conversation, sitting at the first question (`need`, yes/no), one signed
`SpeechResult=yes`: load the state, parse, step the engine to `budget`, save, render TwiML. Next to it,
in the same run, a bare floor served the same way: a Flask route that checks the same
X-Twilio-Signature with RequestValidator and returns a fixed <Gather><Say>.

    .venv/bin/python bench/webhook_turn.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from common import (
    ACCOUNT_SID,
    API_KEY,
    BENCH,
    CALLER_ID,
    CORES,
    CpuWatch,
    FakeTwilio,
    Stack,
    embedded_valkey,
    emit,
    fmt,
    free_port,
    gunicorn_args,
    machine_line,
    markdown_table,
    percentile,
    start_leadbot,
    temp_dir,
    us_numbers,
    wait_for_quiet,
)

TOKEN = "bench-token"  # leadbot_env's TWILIO_AUTH_TOKEN
P99_TARGET_MS = 15.0  # at 8 concurrent calls
WARMUP = 100


# ------------------------------------------------------------------------------------------- the floor


def floor_app():  # noqa: ANN201 - gunicorn --pythonpath bench 'webhook_turn:floor_app()'
    """The least a Flask + twilio voice bot does per turn: check the signature, render a Gather."""
    from flask import Flask, Response, request
    from twilio.request_validator import RequestValidator
    from twilio.twiml.voice_response import Gather, VoiceResponse

    app = Flask("turn-floor")
    token, base = os.environ["FLOOR_TOKEN"], os.environ["FLOOR_BASE_URL"]

    @app.get("/ping")
    def ping():  # noqa: ANN202
        return "ok"

    @app.post("/twilio/voice/turn/<conv_id>")
    def turn(conv_id: str):  # noqa: ANN202
        url = base + request.path
        if not RequestValidator(token).validate(url, request.form.to_dict(),
                                                request.headers.get("X-Twilio-Signature", "")):
            return Response("forbidden", status=403)
        response = VoiceResponse()
        gather = Gather(action=url, input="speech dtmf", timeout=5, speech_timeout="auto")
        gather.say("Roughly what budget do you have in mind? A ballpark is fine, or say not sure.",
                   voice="Polly.Joanna")
        response.append(gather)
        response.say("Sorry, I didn't hear anything. Goodbye.")
        response.hangup()
        return Response(str(response), mimetype="text/xml")

    return app


def start_floor(log_dir: Path, web_workers: int) -> Stack:
    port = free_port()
    stack = Stack("floor", {"FLOOR_TOKEN": TOKEN, "FLOOR_BASE_URL": f"http://127.0.0.1:{port}",
                            "PYTHONPATH": str(BENCH)}, log_dir, port)
    stack.spawn("web", gunicorn_args(port, "webhook_turn:floor_app()", web_workers,
                                     "--pythonpath", str(BENCH)))
    try:
        stack.wait_ready("/ping")
    except BaseException:
        stack.stop()
        raise
    return stack


# ------------------------------------------------------------------------------------------- requests


def turn_request(url: str, call: dict[str, str], speech: str) -> bytes:
    """A complete signed Gather-action POST, as Twilio sends it."""
    from bot.twilio.signature import sign

    params = {"AccountSid": ACCOUNT_SID, "CallSid": call["Sid"], "From": call.get("From", CALLER_ID),
              "To": call["To"], "CallStatus": "in-progress", "SpeechResult": speech, "Confidence": "0.92"}
    body = urlencode(params).encode()
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")  # the Gather's turn number rides here
    return (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"X-Twilio-Signature: {sign(TOKEN, url, params)}"
            f"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n").encode() + body


def setup_conversations(stack: Stack, fake: FakeTwilio, count: int) -> list[bytes]:
    """count leads -> dialed -> answered; one signed `yes` turn request per conversation."""
    import requests

    from bot.twilio.twiml_player import last, parse_twiml

    phones = us_numbers(count)
    headers = {"Authorization": f"Bearer {API_KEY}"}

    def post_lead(phone: str) -> int:
        return requests.post(stack.url + "/leads", headers=headers, timeout=30, json={
            "name": "Bench Lead", "phone": phone, "email": "bench@example.com", "service": "kitchen remodel",
            "consent": True, "source": "bench"}).status_code

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post_lead, phones))
    if statuses.count(202) != count:
        raise RuntimeError(f"lead POSTs: {statuses.count(202)}/{count} accepted")
    arrivals = fake.wait_for(phones, timeout=60 + count / 20)
    if len(arrivals) != count:
        raise RuntimeError(f"only {len(arrivals)}/{count} calls reached the fake Twilio")
    time.sleep(2)  # let the workers save each call's SID after the fake's reply
    worker = stack.procs[1]  # not needed any more: the turns are measured on the web tier alone
    worker.terminate()
    worker.wait(15)

    def answer(phone: str) -> bytes:
        call = fake.calls[phone]
        from bot.twilio.signature import sign

        params = {"AccountSid": ACCOUNT_SID, "CallSid": call["Sid"], "From": call["From"], "To": phone,
                  "CallStatus": "in-progress", "AnsweredBy": "human"}
        resp = requests.post(call["Url"], data=params, timeout=30,
                             headers={"X-Twilio-Signature": sign(TOKEN, call["Url"], params)})
        gather = last(parse_twiml(resp.text), "Gather") if resp.status_code == 200 else None
        if gather is None:
            raise RuntimeError(f"answer webhook for {phone}: {resp.status_code} {resp.text[:300]}")
        return turn_request(gather["action"], call, "yes")

    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(answer, phones))
    print(f"  {count} conversations at `need` in {time.monotonic() - t0:.0f} s", flush=True)
    return out


def floor_requests(stack: Stack, count: int) -> list[bytes]:
    call = {"Sid": "CA" + "0" * 32, "To": "+15125550100"}
    return [turn_request(f"{stack.url}/twilio/voice/turn/{i:032x}", call, "yes") for i in range(count)]


# ----------------------------------------------------------------------------------------- the client


@dataclass
class Level:
    """One closed-loop run: latencies of good turns, failures, wall time, others' load."""

    latencies: list[float]
    failed: int
    seconds: float
    other_load: float

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds


def read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes, bool]:
    """(status, body, server keeps the connection) of one HTTP/1.1 response; buf holds leftovers."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the headers")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    buf[:] = rest[length:]
    return int(lines[0].split()[1]), rest[:length], fields.get("connection", "").lower() != "close"


def closed_loop(port: int, reqs: list[bytes], concurrency: int, expect: bytes) -> Level:
    """`concurrency` threads, each sending its next request when the previous reply is in.

    Connections are kept alive when the server allows it; gunicorn's sync workers close every one
    (`Connection: close`), so each turn pays a loopback connect, as with a sync deployment behind a proxy.
    """
    lock, nxt = threading.Lock(), [0]
    lat: list[float] = []
    failed = [0]

    def client() -> None:
        sock, buf = None, bytearray()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(reqs):
                break
            t = time.perf_counter()
            try:
                if sock is None:
                    sock = socket.create_connection(("127.0.0.1", port))
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    buf = bytearray()
                sock.sendall(reqs[i])
                status, body, keep = read_response(sock, buf)
                ms = (time.perf_counter() - t) * 1000
            except OSError:
                status, body, keep, ms = 0, b"", False, 0.0
            if status == 200 and expect in body:
                lat.append(ms)  # list.append is atomic under the GIL
            else:
                failed[0] += 1
            if not keep and sock is not None:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    watch = CpuWatch()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    return Level(lat, failed[0], time.perf_counter() - t0, watch.other_load())


# -------------------------------------------------------------------------------------------- report


def table(levels: list[int], res: dict[tuple[str, int], Level]) -> str:
    rows = []
    for c in levels:
        f = res.get(("floor", c))
        for name in ("floor", "leadbot"):
            r = res.get((name, c))
            if r is None:
                continue
            p50, p99 = percentile(r.latencies, 50), percentile(r.latencies, 99)
            vs = "—"
            if name == "leadbot" and f is not None:
                vs = (f"p50 {p50 / percentile(f.latencies, 50):.2f}×, "
                      f"p99 {p99 / percentile(f.latencies, 99):.2f}×, req/s {r.rps / f.rps:.0%}")
            turns = f"{len(r.latencies):,}" + (f" ({r.failed} failed)" if r.failed else "")
            rows.append([name, str(c), turns,
                         fmt(p50), fmt(p99), f"{r.rps:.0f}", vs, f"{r.other_load:.0%}"])
    text = markdown_table(["stack", "concurrent calls", "turns", "p50 ms", "p99 ms", "req/s", "vs floor",
                           "other load"], rows)
    b = res.get(("leadbot", 8))
    if b is not None:
        p99 = percentile(b.latencies, 99)
        ok = p99 <= P99_TARGET_MS and b.failed == 0
        text += (f"\n\nTarget: leadbot p99 at 8 concurrent calls {fmt(p99)} ms (≤ {P99_TARGET_MS:g}) — "
                 f"{'met' if ok else 'MISSED'}.")
    return text + f"\n\nMachine: {machine_line()}."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="500 turns per level instead of 2,000")
    ap.add_argument("--turns", type=int, default=2000, help="turns per concurrency level (default 2,000)")
    ap.add_argument("--clients", default="8,32", help="concurrency levels (default 8,32)")
    ap.add_argument("--web-workers", type=int, default=CORES, help="gunicorn sync workers (default: cores)")
    ap.add_argument("--quiet-wait", type=float, default=None,
                    help="seconds to wait for quiet (default 60, 10 quick)")
    ap.add_argument("--only", choices=["floor", "leadbot"], help="run one stack")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    turns = 500 if args.quick else args.turns
    levels = [int(x) for x in args.clients.split(",")]
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (10 if args.quick else 60)
    sys.setswitchinterval(0.0005)
    res: dict[tuple[str, int], Level] = {}
    with contextlib.ExitStack() as ctx:
        tmp = ctx.enter_context(temp_dir("leadbot-bench-"))
        fake = ctx.enter_context(FakeTwilio())
        url = ctx.enter_context(embedded_valkey(tmp / "valkey"))
        print(f"webhook turn: {machine_line()}; gunicorn sync workers={args.web_workers}", flush=True)
        stacks: list[tuple[Stack, list[bytes], bytes]] = []
        need = WARMUP + turns * len(levels)
        if args.only != "leadbot":
            floor = ctx.enter_context(start_floor(tmp, args.web_workers))
            stacks.append((floor, floor_requests(floor, need), b"<Gather"))
        if args.only != "floor":
            bot = ctx.enter_context(start_leadbot(tmp / "leadbot", url, fake.url, tmp, args.web_workers,
                                                  None))
            try:
                stacks.append((bot, setup_conversations(bot, fake, need), b"budget"))
            except BaseException:
                print(bot.logs(), file=sys.stderr)
                raise
        for stack, reqs, expect in stacks:
            closed_loop(stack.port, reqs[:WARMUP], 8, expect)
        start = WARMUP
        for c in levels:
            for stack, reqs, expect in stacks:
                wait_for_quiet(quiet_wait)
                r = res[(stack.name, c)] = closed_loop(stack.port, reqs[start:start + turns], c, expect)
                print(f"  {stack.name:8} {c:3} concurrent  p50 {fmt(percentile(r.latencies, 50))} ms  "
                      f"p99 {fmt(percentile(r.latencies, 99))} ms  {r.rps:.0f} req/s  failed {r.failed}  "
                      f"other load {r.other_load:.0%}", flush=True)
                if r.failed and stack.name == "leadbot":
                    print(stack.logs()[-3000:], file=sys.stderr)
            start += turns
    text = table(levels, res)
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
