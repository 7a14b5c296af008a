"""Pacing (issue #12): TWILIO_CPS held across every worker, fresh leads first, zero 429s.

A fake Twilio allows `--cps` calls a second (a bucket of CPS tokens refilled at CPS a second) and
answers 429 beyond it. leadbot (gunicorn + `leadbot worker`, 8 processes) runs with TWILIO_CPS
equal to it; the bare floor (bench/floor.py: no limiter) takes the same burst for comparison.

1. A burst of 200 leads at once: the i-th call must leave no later than i/CPS + 100 ms after the
   first (and the first as soon as the bare floor's). "i-th call late" is max(t_i - t_0 - i/CPS);
   "by 202 order" ranks the leads by when intake answered instead (8 workers do not keep FIFO exactly).
2. A backlog of 500 due retries (500 contact jobs in the low-priority queue), then fresh leads
   one at a time: each must be dialled within 1/CPS + 100 ms of its POST.

    .venv/bin/python bench/pacing.py [--cps 5] [--burst 200] [--backlog 500] [--fresh 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import redis
from common import (
    CORES,
    FakeTwilio,
    embedded_valkey,
    emit,
    fire,
    fmt,
    lead_json,
    machine_line,
    markdown_table,
    percentile,
    phone_stream,
    post_bytes,
    start_floor,
    start_leadbot,
    temp_dir,
)

SLACK_MS = 100.0


def burst(stack, path: str, fake: FakeTwilio, phones, n: int, cps: float,  # noqa: ANN001
          timeout: float | None = None) -> dict[str, float]:
    """Send n leads at once; how far the i-th call is behind first call + i/CPS, and more."""
    batch = [next(phones) for _ in range(n)]
    rejected0 = fake.rejected
    sent = fire(stack.port, [post_bytes(stack.port, path, lead_json(p)) for p in batch], None)
    t0 = min(s.sent for s in sent)
    arrivals = fake.wait_for(batch, timeout=timeout or n / cps + 30)
    order = sorted(range(n), key=lambda i: sent[i].answered)
    by_accept = [(arrivals[batch[j]] - t0 - i / cps) * 1000
                 for i, j in enumerate(order) if batch[j] in arrivals]
    ranked = sorted(arrivals.values())  # the k-th call out, whichever lead it was
    first = ranked[0] if ranked else t0
    paced = [(t - first - k / cps) * 1000 for k, t in enumerate(ranked)]
    dial = [(arrivals[p] - s.sent) * 1000 for p, s in zip(batch, sent, strict=True) if p in arrivals]
    last = (ranked[-1] - first) if ranked else 0.0
    return {"dialled": len(arrivals), "sent": n, "p50": percentile(dial, 50), "p99": percentile(dial, 99),
            "first": (first - t0) * 1000, "paced_max": max(paced, default=float("nan")),
            "from_burst_max": max((t - t0 - k / cps) * 1000 for k, t in enumerate(ranked)) if ranked else 0.0,
            "accept_max": max(by_accept, default=float("nan")),
            "rate": (len(ranked) - 1) / last if last > 0 else float("nan"), "429": fake.rejected - rejected0}


def burst_row(name: str, stack: str, r: dict[str, float]) -> list[str]:
    """One table row of a burst: dial percentiles, the first call, pacing lateness, rate and 429s."""
    return [name, stack, f"{r['dialled']:.0f}/{r['sent']:.0f}", fmt(r["p50"]), fmt(r["p99"]), fmt(r["first"]),
            fmt(r["paced_max"]), fmt(r["accept_max"]), f"{r['rate']:.2f}", f"{r['429']:.0f}"]


def backlog(data_dir: Path, redis_url: str, phones, n: int) -> None:  # noqa: ANN001
    """n leads already in the database, each with a due contact job in the low-priority queue."""
    from rq import Queue

    from bot.runtime.queueing import CONTACT_JOB, LOW_SUFFIX, contact_job_id, enqueue_low
    from bot.store.database import make_engine, make_sessionmaker
    from bot.store.leads import lead_timezone
    from bot.store.tables import Lead

    engine = make_engine(f"sqlite:///{data_dir / 'leadbot.db'}")
    with make_sessionmaker(engine)() as s:
        leads = [Lead(name="Backlog Lead", phone=p, channel="call", consent=True, timezone=lead_timezone(p),
                      status="received", source="bench-backlog") for p in (next(phones) for _ in range(n))]
        s.add_all(leads)
        s.commit()
        ids = [lead.id for lead in leads]
    engine.dispose()
    low = Queue("leadbot" + LOW_SUFFIX, connection=redis.Redis.from_url(redis_url))
    for lead_id in ids:
        enqueue_low(low, CONTACT_JOB, lead_id, job_id=contact_job_id(lead_id))


def fresh_during_backlog(stack, fake: FakeTwilio, phones, n: int, gap: float) -> dict[str, float]:  # noqa: ANN001
    """Fresh leads one at a time while retries wait: POST sent -> Calls.json, in ms."""
    rejected0, dial = fake.rejected, []
    for _ in range(n):
        phone = next(phones)
        [sent] = fire(stack.port, [post_bytes(stack.port, "/leads", lead_json(phone))], None)
        got = fake.wait_for([phone], timeout=10)
        if phone in got:
            dial.append((got[phone] - sent.sent) * 1000)
        time.sleep(gap)
    return {"dialled": len(dial), "sent": n, "p50": percentile(dial, 50), "p99": percentile(dial, 99),
            "max": max(dial, default=float("nan")), "429": fake.rejected - rejected0}


def main(argv: list[str] | None = None) -> int:
    """Run both scenarios on leadbot, the burst on the floor too; print one table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cps", type=float, default=5.0, help="calls per second, for Twilio and TWILIO_CPS (5)")
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--backlog", type=int, default=500)
    ap.add_argument("--fresh", type=int, default=20, help="fresh leads sent during the backlog (20)")
    ap.add_argument("--gap", type=float, default=0.7, help="seconds between fresh leads (0.7)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    sys.setswitchinterval(0.0005)
    rows, verdicts = [], []
    with contextlib.ExitStack() as ctx:
        tmp = ctx.enter_context(temp_dir("leadbot-pacing-"))
        fake = ctx.enter_context(FakeTwilio(cps=args.cps))
        url = ctx.enter_context(embedded_valkey(tmp / "valkey"))
        phones = phone_stream()
        print(f"pacing: {machine_line()}; CPS {args.cps:g}", flush=True)
        with start_floor(tmp / "floor", url, fake.url, tmp, CORES, 8) as floor:
            time.sleep(1.0)
            fl = burst(floor, "/lead", fake, phones, args.burst, args.cps, timeout=5)
        rows.append(burst_row(f"burst {args.burst}", "floor (no limiter)", fl))
        redis.Redis.from_url(url).flushall()
        time.sleep(1.5)  # the fake's bucket refills
        env = {"TWILIO_CPS": f"{args.cps:g}"}
        bot = ctx.enter_context(start_leadbot(tmp / "leadbot", url, fake.url, tmp, CORES, None, env=env))
        b = burst(bot, "/leads", fake, phones, args.burst, args.cps)
        rows.append(burst_row(f"burst {args.burst}", "leadbot", b))
        ok = b["paced_max"] <= SLACK_MS and b["429"] == 0 and b["dialled"] == b["sent"]
        verdicts.append(f"burst: the i-th call at most {fmt(b['paced_max'])} ms after first call + i/CPS "
                        f"(≤ {SLACK_MS:g}), {b['429']} 429s — {'met' if ok else 'MISSED'}; from the burst's "
                        f"first POST, at most {fmt(b['from_burst_max'])} ms after i/CPS, of which the first "
                        "call "
                        f"took {fmt(b['first'])} ms (the floor's first call: {fmt(fl['first'])} ms)")
        backlog(tmp / "leadbot", url, phones, args.backlog)
        time.sleep(2.0)  # the workers are deep in the retries
        f = fresh_during_backlog(bot, fake, phones, args.fresh, args.gap)
        limit = 1000 / args.cps + SLACK_MS
        rows.append([f"{args.fresh} fresh during {args.backlog} due retries", "leadbot",
                     f"{f['dialled']}/{f['sent']}",
                     fmt(f["p50"]), fmt(f["p99"]), f"max {fmt(f['max'])}", "", "", "", str(f["429"])])
        ok = f["max"] <= limit and f["429"] == 0 and f["dialled"] == f["sent"]
        verdicts.append(f"fresh lead during a backlog: max {fmt(f['max'])} ms (≤ 1/CPS + {SLACK_MS:g} = "
                        f"{limit:g}), {f['429']} 429s — {'met' if ok else 'MISSED'}")
        left = redis.Redis.from_url(url).llen("rq:queue:leadbot-low")
        print(f"  retries still queued when the fresh leads were done: {left}", flush=True)
    text = markdown_table(["scenario", "stack", "dialled", "POST→dial p50 ms", "p99 ms", "first call ms",
                           "i-th call late ms", "by 202 order ms", "calls/s", "429s"], rows)
    text += "\n\nTargets: " + "; ".join(verdicts) + f".\n\nMachine: {machine_line()}."
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
