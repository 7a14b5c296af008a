"""LeadWorker's trimmed RQ bookkeeping, on a real Valkey: fewer round trips, same worker key life."""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker

from bot.jobs.worker import LeadWorker


def commands_per_job(worker_class: type[SimpleWorker], conn: redis.Redis, jobs: int = 10) -> float:
    """Redis commands a burst of trivial jobs costs, per job."""
    queue = Queue("bench", connection=conn)
    for _ in range(jobs):
        queue.enqueue("os.getpid")
    conn.config_resetstat()
    worker_class([queue], connection=conn).work(burst=True)
    stats = conn.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if "config" not in k) / jobs


def test_lead_worker_sends_fewer_commands_per_job(services):  # noqa: ANN001 - LeadWorker uses its services
    conn = services.redis
    simple = commands_per_job(SimpleWorker, conn)
    lead = commands_per_job(LeadWorker, conn)
    assert lead <= simple - 8, (simple, lead)


def test_heartbeat_is_skipped_only_while_the_key_outlives_the_request(services):  # noqa: ANN001
    conn = services.redis
    worker = LeadWorker([Queue("bench", connection=conn)], connection=conn)
    worker.register_birth()
    worker.heartbeat()
    idle_ttl = worker.worker_ttl + 60
    assert conn.ttl(worker.key) > idle_ttl - 5
    conn.expire(worker.key, 100)  # nobody else moves it; the worker's own record says ~idle_ttl
    worker.heartbeat()  # skipped: our last refresh still covers it
    assert conn.ttl(worker.key) <= 100
    with conn.pipeline() as pipe:  # RQ shortens the key while a job runs (job timeout + 60)
        worker.heartbeat(90, pipeline=pipe)
        pipe.execute()
    worker.heartbeat()  # the idle TTL is longer than what is left: refreshed
    assert conn.ttl(worker.key) > idle_ttl - 5
    worker.register_death()


def test_a_stop_that_comes_while_the_worker_warms_up_is_a_clean_stop(services, monkeypatch):  # noqa: ANN001
    """The pool stops a worker still starting (`leadbot run` stopped right after it started): the
    signal arrives before RQ's handlers exist. It must not be a KeyboardInterrupt and a traceback in
    the log, nor be lost: the worker stops before taking a job."""
    import os
    import signal

    from bot.jobs import worker as worker_module

    conn = services.redis
    queue = Queue("stopping", connection=conn)
    queue.enqueue("os.getpid")
    monkeypatch.setattr(worker_module, "warm", lambda svc: os.kill(os.getpid(), signal.SIGINT))
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worked = LeadWorker([queue], connection=conn).work()  # not burst: only the stop ends it
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert worked is False
    assert queue.count == 1  # stopped before its first job, which waits for the next worker


def test_a_stop_during_start_ends_the_scheduler_forked_before_its_handlers(services,  # noqa: ANN001
                                                                          monkeypatch):  # noqa: ANN001
    """RQ forks its scheduler while the worker still keeps early stops. The worker's teardown stops
    that child at once; the child, not yet past the handlers it inherited, must die of it, not keep
    it in a list: else the worker waits on it for ever and, once killed, leaves an orphan moving
    scheduled jobs into the queues (a later test's 'held back' retry was dialled)."""
    import os
    import signal
    import threading

    from rq.scheduler import RQScheduler

    from bot.jobs import worker as worker_module

    conn = services.redis
    queue = Queue("stopping", connection=conn)
    monkeypatch.setattr(worker_module, "warm", lambda svc: os.kill(os.getpid(), signal.SIGINT))
    real_work = RQScheduler.work

    def slow_to_start(scheduler: RQScheduler) -> None:  # widen the window between fork and handlers
        import time
        time.sleep(1)
        real_work(scheduler)

    monkeypatch.setattr(RQScheduler, "work", slow_to_start)
    worker = LeadWorker([queue], connection=conn)
    hung = threading.Event()

    def watchdog() -> None:  # the old code waits on the child for ever: end it, and say so
        if worker.scheduler is not None and worker.scheduler._process.is_alive():
            hung.set()
            os.kill(worker.scheduler._process.pid, signal.SIGKILL)

    timer = threading.Timer(15, watchdog)
    timer.start()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.work(with_scheduler=True)
    finally:
        timer.cancel()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert not hung.is_set()
    assert worker.scheduler is not None  # the scheduler was started, and then stopped
    assert worker.scheduler._process.exitcode == -signal.SIGTERM
