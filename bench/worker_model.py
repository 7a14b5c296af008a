"""Which RQ worker model runs the contact job best: LeadWorker (non-forking) or RQ's forking Worker.

One worker process of each kind takes real `bot.jobs.dispatch.contact` jobs (leads written straight to
the DB and enqueued, no web tier) and dials a loopback fake Twilio. Reports enqueue -> Calls.json
latency for leads one at a time, and jobs/s for a burst.

    .venv/bin/python bench/worker_model.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from common import (
    BENCH,
    FakeTwilio,
    Stack,
    embedded_valkey,
    emit,
    fmt,
    free_port,
    leadbot_env,
    machine_line,
    markdown_table,
    percentile,
    phone_stream,
    temp_dir,
)

MODELS = {"simple": "LeadWorker (SimpleWorker, no fork)", "fork": "rq.Worker (fork per job)"}


def serve(model: str) -> None:
    """Worker process body: run one worker of the given model until SIGTERM."""
    import rq

    from bot.jobs.worker import LeadWorker
    from bot.runtime import services as runtime

    class ForkingLeadWorker(rq.Worker):
        """RQ's default model: a fresh fork (a 'work horse') per job."""

        def work(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
            runtime.current()  # build services before forking, as a warm pre-fork server would
            from bot import dispatch  # noqa: F401
            return super().work(*args, **kwargs)

        def main_work_horse(self, job, queue):  # noqa: ANN001, ANN201
            runtime.current().engine.dispose(close=False)  # never share pooled SQLite connections across fork
            return super().main_work_horse(job, queue)

    svc = runtime.current()
    cls = LeadWorker if model == "simple" else ForkingLeadWorker
    cls([svc.queue], connection=svc.redis).work()


def run_model(model: str, tmp: Path, redis_url: str, fake: FakeTwilio, sequential: int,
              burst: int) -> list[str]:
    """Start a worker of this model, measure it, stop it; returns one table row."""
    import redis

    from bot.runtime.queueing import enqueue_contact
    from bot.runtime.services import build_services
    from bot.settings import Settings
    from bot.store.leads import LeadIn, create_lead
    from bot.store.prepared import raw_session

    redis.Redis.from_url(redis_url).flushall()
    data = tmp / model
    env = {k: v for k, v in leadbot_env(data, redis_url, fake.url, free_port()).items() if v is not None}
    svc = build_services(Settings(**env))  # the same settings the worker process reads
    stack = Stack(model, env, tmp, free_port())
    stack.spawn("worker", [sys.executable, str(BENCH / "worker_model.py"), "--serve", model])
    phones = phone_stream(50_000 if model == "fork" else 0)

    def new_lead() -> tuple[str, str]:
        phone = next(phones)
        lead_in = LeadIn.model_validate({"name": "Bench Lead", "phone": phone, "consent": True},
                                        context={"region": "US"})
        with raw_session(svc.engine) as conn:
            lead_id, *_ = create_lead(conn, lead_in, {"ip": "127.0.0.1"}, None, 600, svc.writer)
        return lead_id, phone

    with stack:
        try:
            warm = [new_lead() for _ in range(5)]  # the first jobs pay for imports: leave them out
            for lead_id, _ in warm:
                enqueue_contact(svc.queue, lead_id)
            if len(fake.wait_for([p for _, p in warm], timeout=60)) < len(warm):
                raise RuntimeError(f"{model} worker did not dial the warm-up leads")
            latencies = []
            for _ in range(sequential):
                lead_id, phone = new_lead()
                t = time.perf_counter()
                enqueue_contact(svc.queue, lead_id)
                got = fake.wait_for([phone], timeout=30)
                if phone in got:
                    latencies.append((got[phone] - t) * 1000)
                time.sleep(0.05)
            batch = [new_lead() for _ in range(burst)]
            t = time.perf_counter()
            for lead_id, _ in batch:
                enqueue_contact(svc.queue, lead_id)
            got = fake.wait_for([p for _, p in batch], timeout=120)
            took = max(got.values()) - t if got else float("nan")
        except BaseException:
            print(stack.logs(), file=sys.stderr)
            raise
        finally:
            svc.engine.dispose()
    p50, p99, rate = percentile(latencies, 50), percentile(latencies, 99), len(got) / took
    print(f"  {MODELS[model]:36} p50 {fmt(p50)} ms  jobs/s {rate:.0f}", flush=True)
    per_job = took * 1000 / max(1, len(got))
    return [MODELS[model], fmt(p50), fmt(p99), f"{len(got)}/{burst}", f"{rate:.0f}", fmt(per_job)]


def main(argv: list[str] | None = None) -> int:
    """Measure both models in one run and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 sequential leads and a burst of 50")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    ap.add_argument("--serve", choices=list(MODELS), help=argparse.SUPPRESS)  # the worker process itself
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    sequential, burst = (20, 50) if args.quick else (100, 200)
    sys.setswitchinterval(0.0005)
    rows = []
    with temp_dir("leadbot-workers-") as tmp, FakeTwilio() as fake, embedded_valkey(tmp / "valkey") as url:
        os.environ.pop("DATABASE_URL", None)
        print(f"worker model: {machine_line()}", flush=True)
        for model in MODELS:
            rows.append(run_model(model, tmp, url, fake, sequential, burst))
    text = markdown_table(["worker model (1 process)", "enqueue→dial p50 ms", "p99 ms", "burst dialed",
                           "jobs/s", "ms per job"], rows) + f"\n\nMachine: {machine_line()}."
    return emit(text, args.out)


if __name__ == "__main__":
    sys.exit(main())
