"""Pacing (issue #12): TWILIO_CPS held across every worker, fresh leads first, zero 429s.

A fake Twilio allows `--cps` calls a second (a bucket of CPS tokens refilled at CPS a second) and
answers 429 beyond it. leadbot (gunicorn + `leadbot worker`, 8 processes) runs with TWILIO_CPS
equal to it; the bare floor (bench/floor.py: no limiter) takes the same burst for comparison.

1. A burst of 200 leads at once: lead i must be dialled no later than the burst's first POST +
   i/CPS + 100 ms. Lead i is ranked three ways:
   - by acceptance order: as leadbot accepted the leads (each contact job's `enqueued_at`, the
     time the lead's timeline shows as queued). This is the line's order, so the figure tests the
     limiter: whether each lead was ready and sent at its turn.
   - by 202 order: as the 202s reached the bench (their first bytes). Two web processes that accept
     two leads within a millisecond or two may answer them in either order (a process can be
     preempted between enqueueing a lead and writing its 202), so this ranking swaps such pairs,
     and a swapped pair puts one lead a whole turn (1/CPS) behind its 202 rank. The bench counts
     the pairs whose 202s came in the other order from leadbot's record, and the widest gap.
   "k-th call late" ranks the calls as they left, whichever lead each was: t_k - t_first - k/CPS.
2. A backlog of 500 due retries (500 contact jobs in the low-priority queue), then fresh leads
   one at a time: each must be dialled within 1/CPS + 100 ms of its POST.

    .venv/bin/python bench/pacing.py [--cps 5] [--burst 200] [--backlog 500] [--fresh 20] [--workers N] [--stages] [--trace N] [--quiet-wait S]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
    wait_for_quiet,
)
from stages import Lead, stage_table, stage_times

SLACK_MS = 100.0


def empty_database(url: str) -> None:
    """Drop leadbot's tables in the bench's own database, so the burst starts from nothing."""
    from sqlalchemy import create_engine

    from bot.store.database import init_db
    from bot.store.tables import Base

    engine = create_engine(url)
    init_db(engine)
    Base.metadata.drop_all(engine)
    engine.dispose()


def enqueue_order(redis_url: str, sent, batch) -> list[int]:  # noqa: ANN001
    """Leads (indexes) in the order leadbot accepted them: each contact job's `enqueued_at`, as RQ
    recorded it when intake put the job on the queue (the line's order), read from its job hash."""
    from datetime import datetime

    conn, stamps = redis.Redis.from_url(redis_url), {}
    for i, s in enumerate(sent):
        with contextlib.suppress(ValueError, KeyError):
            lead_id = json.loads(s.body)["id"]
            raw = conn.hget(f"rq:job:contact-{lead_id}", "enqueued_at")
            stamps[i] = datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()
    return sorted(stamps, key=stamps.__getitem__) if len(stamps) == len(batch) else []


def answered(s) -> float:  # noqa: ANN001
    """When the bench saw a POST's 202: its first bytes (the end of the reply also waits for the
    server's own close, which comes after it logged the request)."""
    return s.first_byte or s.answered


def inversions(sent, accepted: list[int]) -> tuple[int, float]:  # noqa: ANN001
    """Pairs of leads whose 202s reached the bench in the other order from leadbot's acceptance
    record, and the widest such gap in ms."""
    count, widest = 0, 0.0
    for a, j in enumerate(accepted):
        for k in accepted[a + 1:]:  # j was accepted before k
            gap = (answered(sent[j]) - answered(sent[k])) * 1000
            if gap > 0:
                count, widest = count + 1, max(widest, gap)
    return count, widest


def burst(stack, path: str, fake: FakeTwilio, phones, n: int, cps: float,  # noqa: ANN001
          timeout: float | None = None, redis_url: str | None = None, trace: tuple[Path, int] | None = None,
          ) -> dict[str, float]:
    """Send n leads at once; how far lead i is behind the first POST + i/CPS, by three rankings."""
    batch = [next(phones) for _ in range(n)]
    rejected0 = fake.rejected
    sent = fire(stack.port, [post_bytes(stack.port, path, lead_json(p)) for p in batch], None)
    t0 = min(s.sent for s in sent)
    arrivals = fake.wait_for(batch, timeout=timeout or n / cps + 30)
    order = sorted(range(n), key=lambda i: answered(sent[i]))
    ranked = sorted(arrivals.values())  # the k-th call out, whichever lead it was
    first = ranked[0] if ranked else t0
    dialled = [(i, j) for i, j in enumerate(order) if batch[j] in arrivals]
    by_202 = [(arrivals[batch[j]] - t0 - i / cps) * 1000 for i, j in dialled]
    out_rank = {t: k for k, t in enumerate(ranked)}
    if by_202:  # which lead was latest against its place, and where its call went out
        i, j = dialled[max(range(len(dialled)), key=by_202.__getitem__)]
        k = out_rank[arrivals[batch[j]]]
        line = (f"  latest by 202 order: the lead answered {i}th, called {k}th, its 202 "
                f"{(answered(sent[j]) - t0) * 1000:.0f} ms after the first POST")
        ahead = [(ii, jj) for ii, jj in dialled if out_rank[arrivals[batch[jj]]] == k - 1]
        if ahead:  # the lead called just before it: was its 202 answered much later?
            ii, jj = ahead[0]
            line += (f"; the lead called just before it was answered {ii}th, "
                     f"{(answered(sent[jj]) - answered(sent[j])) * 1000:+.1f} ms from it")
        print(line, flush=True)
    accepted = enqueue_order(redis_url, sent, batch) if redis_url else []
    if trace and accepted:
        print_trace(trace, redis_url, sent, batch, accepted, arrivals, t0, cps)
    by_enqueue = [(arrivals[batch[j]] - t0 - i / cps) * 1000 for i, j in enumerate(accepted) if batch[j] in arrivals]
    swapped, widest = inversions(sent, accepted) if accepted else (0, 0.0)
    paced = [(t - first - k / cps) * 1000 for k, t in enumerate(ranked)]
    dial = [(arrivals[p] - s.sent) * 1000 for p, s in zip(batch, sent, strict=True) if p in arrivals]
    last = (ranked[-1] - first) if ranked else 0.0
    return {"dialled": len(arrivals), "sent": n, "p50": percentile(dial, 50), "p99": percentile(dial, 99),
            "first": (first - t0) * 1000, "paced_max": max(paced, default=float("nan")),
            "by_202": max(by_202, default=float("nan")),
            "by_enqueue": max(by_enqueue, default=float("nan")), "swapped": swapped, "widest_swap": widest,
            "first_lead": batch[order[0]], "first_sent": t0,
            "rate": (len(ranked) - 1) / last if last > 0 else float("nan"), "429": fake.rejected - rejected0}


def print_trace(trace: tuple[Path, int], redis_url: str, sent, batch, accepted: list[int],  # noqa: ANN001
                arrivals: dict[str, float], t0: float, cps: float) -> None:
    """The first leads in acceptance order, each stage's wall-clock time in ms after the first POST:
    202 answered, enqueued (RQ), started (RQ started_at: after the worker slept until its turn was near), ready to send (the 'dialing'
    event, stamped before the limiter is asked), Calls.json at the fake; and how late against i/CPS."""
    import sqlite3

    from stages import _wall

    db, n = trace
    conn, r, off = sqlite3.connect(f"file:{db}?mode=ro", uri=True), redis.Redis.from_url(redis_url), wall_offset()
    rows = []
    for i, j in enumerate(accepted[:n]):
        lead_id = json.loads(sent[j].body)["id"]
        job = r.hmget(f"rq:job:contact-{lead_id}", "enqueued_at", "started_at")
        ready = conn.execute("SELECT at FROM events WHERE lead_id = ? AND type = 'dialing'", (lead_id,)).fetchone()
        marks = [answered(sent[j]) + off, *(_wall(v.decode()) if v else None for v in job),
                 _wall(ready[0]) if ready else None, arrivals[batch[j]] + off if batch[j] in arrivals else None]
        rel = [fmt((m - t0 - off) * 1000) if m is not None else "—" for m in marks]
        late = (arrivals[batch[j]] - t0 - i / cps) * 1000 if batch[j] in arrivals else float("nan")
        rows.append([str(i), *rel, fmt(late)])
    conn.close()
    print("\n" + markdown_table(["lead (acceptance order)", "202 ms", "enqueued ms", "job started (RQ started_at) ms",
                                 "ready to send ms", "dialled ms", "late vs i/CPS ms"], rows) + "\n", flush=True)


def burst_row(name: str, stack: str, r: dict[str, float]) -> list[str]:
    """One table row of a burst: dial percentiles, the first call, pacing lateness, rate and 429s."""
    whole = r["dialled"] == r["sent"]  # lead i's lateness means nothing over the few calls a 429 let through
    late = [fmt(r[k]) if whole else "—" for k in ("by_enqueue", "by_202")]
    swaps = f"{r['swapped']:.0f} (widest {r['widest_swap']:.1f} ms)" if whole else "—"
    return [name, stack, f"{r['dialled']:.0f}/{r['sent']:.0f}", fmt(r["p50"]), fmt(r["p99"]), fmt(r["first"]),
            fmt(r["paced_max"]), *late, swaps,
            f"{r['rate']:.2f}", f"{r['429']:.0f}"]


def wall_offset() -> float:
    """Add to a perf_counter stamp to get wall-clock seconds (leadbot's records are wall-clock)."""
    return time.time() - time.perf_counter()


def backlog(data_dir: Path, redis_url: str, phones, n: int, db_url: str | None = None) -> None:  # noqa: ANN001
    """n leads already in the database, each with a due contact job in the low-priority queue."""
    from rq import Queue

    from bot.runtime.queueing import CONTACT_JOB, LOW_SUFFIX, contact_job_id, enqueue_low
    from bot.store.database import make_engine, make_sessionmaker
    from bot.store.leads import lead_timezone
    from bot.store.tables import Lead

    engine = make_engine(db_url or f"sqlite:///{data_dir / 'leadbot.db'}")
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
    ap.add_argument("--workers", type=int, default=None, help="leadbot worker --processes (default: its own)")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="wait up to this many seconds for other processes to go quiet before each burst (30)")
    ap.add_argument("--stages", action="store_true", help="where the first accepted lead's time went")
    ap.add_argument("--trace", type=int, default=0, metavar="N",
                    help="print the first N leads of the burst (acceptance order) stage by stage (SQLite only)")
    ap.add_argument("--database-url", help="leadbot's database (default: SQLite under the temp dir), e.g. "
                    "postgresql+psycopg://postgres@127.0.0.1:5432/bench (emptied first)")
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
            wait_for_quiet(args.quiet_wait)
            fl = burst(floor, "/lead", fake, phones, args.burst, args.cps, timeout=5)
        rows.append(burst_row(f"burst {args.burst}", "floor (no limiter)", fl))
        redis.Redis.from_url(url).flushall()
        time.sleep(1.5)  # the fake's bucket refills
        env = {"TWILIO_CPS": f"{args.cps:g}"}
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
            empty_database(args.database_url)
        wait_for_quiet(args.quiet_wait)
        bot = ctx.enter_context(start_leadbot(tmp / "leadbot", url, fake.url, tmp, CORES, args.workers, env=env))
        trace = (tmp / "leadbot" / "leadbot.db", args.trace) if args.trace and not args.database_url else None
        b = burst(bot, "/leads", fake, phones, args.burst, args.cps, redis_url=url, trace=trace)
        rows.append(burst_row(f"burst {args.burst}", "leadbot", b))
        clean = b["429"] == 0 and b["dialled"] == b["sent"]

        def verdict(late: float) -> str:
            return "met" if late <= SLACK_MS and clean else "MISSED"

        verdicts.append(f"burst, lead i in the order leadbot accepted it (its job's enqueued_at, the line's order) "
                        f"dialled at most {fmt(b['by_enqueue'])} ms after the first POST + i/CPS (≤ {SLACK_MS:g}), "
                        f"{b['429']} 429s — {verdict(b['by_enqueue'])}")
        verdicts.append(f"lead i in the order its 202 reached the bench: at most {fmt(b['by_202'])} ms — "
                        f"{verdict(b['by_202'])}; {b['swapped']} pairs of 202s reached the bench in the other order "
                        f"from leadbot's acceptance record, the widest {b['widest_swap']:.1f} ms apart")
        verdicts.append(f"the first call {fmt(b['first'])} ms after the first POST (the floor's: "
                        f"{fmt(fl['first'])} ms); the k-th call out at most {fmt(b['paced_max'])} ms after the "
                        "first + k/CPS")
        if args.stages and not args.database_url:
            time.sleep(0.5)
            first_lead = [Lead(b["first_lead"], b["first_sent"] + wall_offset(), None)]
            first_lead[0].arrived = fake.arrivals.get(b["first_lead"], 0.0) + wall_offset()
            print("\n" + stage_table("leadbot, the first lead accepted in the burst",
                                     stage_times(tmp / "leadbot" / "leadbot.db", url, first_lead)) + "\n",
                  flush=True)
        backlog(tmp / "leadbot", url, phones, args.backlog, args.database_url)
        time.sleep(2.0)  # the workers are deep in the retries
        f = fresh_during_backlog(bot, fake, phones, args.fresh, args.gap)
        limit = 1000 / args.cps + SLACK_MS
        rows.append([f"{args.fresh} fresh during {args.backlog} due retries", "leadbot",
                     f"{f['dialled']}/{f['sent']}",
                     fmt(f["p50"]), fmt(f["p99"]), f"max {fmt(f['max'])}", "", "", "", "", "", str(f["429"])])
        ok = f["max"] <= limit and f["429"] == 0 and f["dialled"] == f["sent"]
        verdicts.append(f"fresh lead during a backlog: max {fmt(f['max'])} ms (≤ 1/CPS + {SLACK_MS:g} = "
                        f"{limit:g}), {f['429']} 429s — {'met' if ok else 'MISSED'}")
        left = redis.Redis.from_url(url).llen("rq:queue:leadbot-low")
        print(f"  retries still queued when the fresh leads were done: {left}", flush=True)
    text = markdown_table(["scenario", "stack", "dialled", "POST→dial p50 ms", "p99 ms", "first call ms",
                           "k-th call late ms", "lead i late, acceptance order ms", "lead i late, 202 order ms",
                           "202s swapped vs acceptance", "calls/s", "429s"], rows)
    text += "\n\nTargets: " + "; ".join(verdicts) + f".\n\nMachine: {machine_line()}."
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
