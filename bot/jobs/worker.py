"""The worker process: non-forking RQ workers (jobs stay warm) plus the periodic sweeper."""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time

import phonenumbers
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.utils import now
from rq.worker import WorkerStatus
from rq.worker_pool import WorkerPool

from bot.jobs.sweeper import sweep_once_locked
from bot.runtime import crm, pacing, queueing
from bot.compliance import gate as compliance
from bot.compliance.calendars import warm_calendars
from bot.runtime.services import Services, current
from bot.settings import Settings
from bot.store import clock
from bot.store.tables import Lead

log = logging.getLogger(__name__)

# RQ refreshes the worker key's TTL (minutes long) three times around every job, three round trips
# each; one refresh is enough when the key already lives within this margin of what is asked.
HEARTBEAT_MARGIN_S = 30
# Jobs whose first act is a call or a text: they take their place in the pacing line when they start
# (kept from enqueue) and sleep until their turn is near (bot.runtime.pacing.Limiter.defer).
DIALLING_JOBS = frozenset({queueing.CONTACT_JOB, "bot.dispatch.contact"})
# Jobs about a lead already qualified or handed off: their calls and texts go before fresh leads'.
URGENT_JOBS = "handoff.jobs."
SUSPENSION_CHECK_S = 1.0
PUBSUB_WAKE_S = 0.25  # a socket wait, not a Redis round trip: waking often costs nothing


def _sweeper_loop(stop: threading.Event) -> None:
    """Sweep every SWEEP_INTERVAL_SECONDS until the process stops; never dies on an error."""
    svc = current()
    interval = svc.settings.sweep_interval_seconds
    while not stop.wait(interval):
        try:
            sweep_once_locked(svc, interval)
        except redis.RedisError as exc:
            log.warning("sweeper: redis unavailable: %s", exc)
        except Exception:  # a bad row must not stop future sweeps; it is logged with its traceback
            log.exception("sweeper pass failed")


class LeadWorker(SimpleWorker):
    """SimpleWorker runs jobs in-process: no fork, no re-import, ~3 ms instead of ~140 ms per lead.

    It also trims RQ's per-job bookkeeping (see bench/README.md): worker heartbeats that would not
    move the key's expiry are skipped and the rest go in one pipeline, an unchanged state is not
    written again, and suspension is checked once a second. Per job that is 20 round trips down
    to 8, and 6 down to 3 before the job runs.
    """

    log_result_lifespan = False  # one "Job OK" line per job is enough
    # RQ backs off up to 60 s between reconnects while Redis is down, so leads queued just after it
    # came back waited up to a minute (measured: 50 s after a 70 s outage). Retry every 5 s at most.
    max_connection_wait_time = 5.0

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._key_expires = 0.0  # monotonic time the worker key expires, per our last heartbeat
        self._suspension_checked = float("-inf")

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:  # noqa: ANN001
        """Refresh the worker key's TTL only when that extends it; one round trip, not three."""
        timeout = timeout or self.worker_ttl + 60
        at = time.monotonic()
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
        elif self._key_expires - at >= timeout - HEARTBEAT_MARGIN_S:
            return
        else:
            with self.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(timeout, pipeline=pipe)
                pipe.execute()
        self._key_expires = at + timeout

    def set_state(self, state: str, pipeline=None) -> None:  # noqa: ANN001
        """Write the worker's state only when it changes (RQ sets 'idle' twice per job)."""
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline=pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """SimpleWorker's, with the 'idle' state and the heartbeat after the job in one round trip.

        A low-priority job first waits for a free TWILIO_CPS slot, and goes back to the front of
        its queue if a fresh lead arrives meanwhile: a worker is never stuck behind retries.
        """
        low = queue.name.endswith(queueing.LOW_SUFFIX)
        if low and not self._admit(job, queue):
            return
        urgent = job.func_name.startswith(URGENT_JOBS)
        level = pacing.priority.set(pacing.LOW if low else pacing.URGENT if urgent else pacing.HIGH)
        try:
            execution = self.prepare_execution(job)
            if not low and job.func_name in DIALLING_JOBS and queueing.sends_via_twilio(job):
                self._reserve(job)
            self.perform_job(job, queue, execution)
        finally:
            pacing.priority.reset(level)
            pacing.prepaid.set(False)
            if (place := pacing.held.get()) is not None:  # the job ended without sending
                pacing.held.set(None)
                current().limiter.release(place[0])
        with self.connection.pipeline(transaction=False) as pipe:
            self.set_state(WorkerStatus.IDLE, pipeline=pipe)
            self.heartbeat(pipeline=pipe)
            pipe.execute()

    def _reserve(self, job: Job) -> None:
        """Put a fresh lead's job in the TWILIO_CPS line before any database work, in acceptance order,
        and start that work only when its turn is near.

        Getting in line only at the send let a job slow to claim its lead lose its turn to later ones
        (8 workers: leads up to 1.5 s behind their place at 5 calls a second). A job lined up at
        enqueue keeps that place. Called once the job is in RQ's started registry: a worker that
        dies while it waits leaves a job the sweepers see and enqueue again.
        """
        limiter = current().limiter
        if limiter.cps > 0:
            pacing.held.set(limiter.reserve(job.id, pacing.order_of(job.enqueued_at), defer=True))

    def _admit(self, job: Job, queue: Queue) -> bool:
        """A place in line for a low-priority job before running it; False when it went back to its queue."""
        limiter = current().limiter
        if limiter.cps <= 0:
            return True
        try:
            while True:
                if (place := limiter.admit()) is not None:
                    pacing.held.set(place)  # the job's first send takes this turn (or gives it back)
                    return True
                if self.connection.llen(limiter.high_queue_key):
                    queue.push_job_id(job.id, at_front=True)
                    return False
                time.sleep(pacing.LOW_POLL_S)
        except redis.RedisError as exc:  # the job's own send falls back to 1 per second
            log.warning("pacing: admission without redis: %s", exc)
            return True

    def unsubscribe(self) -> None:
        """Stop RQ's pubsub thread before unsubscribing: else, when the thread reads the unsubscribe
        reply first, it waits out its 60 s sleep before the worker can exit."""
        if getattr(self, "pubsub_thread", None) is not None:
            self.pubsub_thread.stop(timeout=0)
        super().unsubscribe()

    def _keep_early_stop(self, signum: int, _frame: object) -> None:
        """Keep a stop that comes before RQ's handlers are in place (see work()).

        RQ forks its scheduler while this handler is installed, and the child runs with it until it
        installs its own. A stop that reaches the child in that window (the worker's own teardown
        sends one) must end it: kept in a list nobody reads, it left the worker waiting on the
        child for ever, and once the worker was killed the orphaned scheduler went on moving jobs.
        """
        if os.getpid() != self._starting_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._early_stops.append(signum)

    def _install_signal_handlers(self) -> None:
        """RQ's handlers; then a stop that arrived while the worker was starting takes effect."""
        super()._install_signal_handlers()
        if getattr(self, "_early_stops", None):  # as RQ's request_stop, but the loop is not running yet
            self.log.info("Worker %s: stop requested while starting; stopping", self.name)
            self._shutdown_requested_date = now()
            signal.signal(signal.SIGINT, self.request_force_stop)  # a second signal: a cold stop
            signal.signal(signal.SIGTERM, self.request_force_stop)
            self._stop_requested = True  # the loop's first check ends it, before any job

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ writes the job's heartbeat here in a round trip of its own; the success or failure
        pipeline that follows saves the job, heartbeat included."""
        job.ended_at = job.last_heartbeat = now()

    def check_for_suspension(self, burst: bool) -> None:
        """Look for `rq suspend` once a second rather than before every job (a round trip each)."""
        at = time.monotonic()
        if at - self._suspension_checked < SUSPENSION_CHECK_S:
            return
        self._suspension_checked = at
        super().check_for_suspension(burst)

    def subscribe(self) -> None:
        """RQ's, with the command thread waking every PUBSUB_WAKE_S instead of every 60 s.

        redis-py's stop() joins that thread without a limit, so a worker that was told to stop
        waited up to a minute in its teardown: `leadbot run` could not stop in time, and tests that
        drain the queue paid the minute now and then.
        """
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAKE_S, daemon=True, exception_handler=self._pubsub_exception_handler)

    def work(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        """Warm the services (their SQLite checkpointer starts with them) and start the sweeper.

        RQ installs its SIGINT/SIGTERM handlers only once it has registered the worker; a stop that
        came earlier (the pool stopping a worker still warming up) raised KeyboardInterrupt with a
        traceback in `leadbot run`'s log. Until then such a signal is kept and acted on when RQ's
        handlers are in place: a warm stop before the first job.
        """
        self._early_stops: list[int] = []
        self._starting_pid = os.getpid()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._keep_early_stop)
        current().flows  # noqa: B018 - load flows outside any job's transaction
        crm.subscribers(current(), strict=True)  # a broken WEBHOOKS_PATH stops the start, naming file:line
        from bot import dispatch  # noqa: F401 - import job code before the first lead arrives

        warm(current())

        stop = threading.Event()
        threading.Thread(target=_sweeper_loop, args=(stop,), name="sweeper", daemon=True).start()
        try:
            return super().work(*args, **kwargs)
        finally:
            stop.set()


def warm(svc: Services) -> None:
    """Pay each process's first-lead costs before a lead waits for them.

    A cold worker's first contact job took 78 ms instead of 2 (on an idle machine; several times
    that while a burst of POSTs shares the CPU): 62 ms importing the twilio client's REST modules on
    first use of `client.calls`, 17 ms parsing the calling-rules table, and phonenumbers loading its
    geocoder data. Warmed, it takes about 9 ms. The table's holiday calendars cost ~75 ms more on
    their first lookup of a year.
    """
    svc.twilio.calls  # noqa: B018 - the SDK imports twilio.rest.api.v2010 here
    svc.twilio.messages  # noqa: B018
    # The calling rules, and phonenumbers' geocoder and time zones for the default region's numbers.
    rules = compliance.rules_for(svc)
    sample = phonenumbers.example_number(svc.settings.default_region)
    if sample is not None:
        phone = phonenumbers.format_number(sample, phonenumbers.PhoneNumberFormat.E164)
        compliance.jurisdiction(Lead(phone=phone, timezone=None), rules)
    warm_calendars(rules.all_holidays(), clock.now().date())


def _preload() -> None:
    """Import the job code (and with it SQLAlchemy, twilio, the flow engine) in the pool's parent.

    The pool forks its workers, so they share these pages instead of each importing its own copy.
    Measured with 8 workers: 1,284 MB PSS in all without this, ~600 MB with the imports, ~475 MB
    when the import garbage is also collected before the fork (a child's first collection would
    otherwise free it and copy the pages it sits on). `gc.freeze()` keeps later full collections out
    of the shared objects (no difference yet in the first seconds).
    """
    import twilio.rest.api.v2010.account  # noqa: F401 - what the client imports on its first call

    import bot.jobs.dispatch  # noqa: F401
    import bot.jobs.touches  # noqa: F401
    import bot.runtime.services  # noqa: F401
    import handoff.jobs  # noqa: F401

    gc.collect()
    gc.freeze()


def queue_names(settings: Settings) -> list[str]:
    """In priority order: fresh leads, CRM webhook deliveries, then retries, nurture and backfill."""
    return [settings.queue_name, f"{settings.queue_name}-webhooks", queueing.low_queue_name(settings)]


def run(settings: Settings, processes: int = 1, burst: bool = False) -> None:
    """Run one LeadWorker in this process, or a pool of them."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    # The twilio client logs every request and response header at INFO: ten lines per call,
    # written before the request leaves. Its errors still surface as exceptions.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    if processes <= 1:
        svc = current()
        queues = [svc.queue, crm.webhook_queue(svc), svc.low_queue]  # see queue_names()
        LeadWorker(queues, connection=svc.redis).work(with_scheduler=True, burst=burst)
        return
    # The pool forks its workers: build no DB engine here, or they would share its SQLite
    # connections across fork. Each worker builds its own services in LeadWorker.work().
    _preload()
    pool = WorkerPool(queue_names(settings), connection=queueing.connect(settings), num_workers=processes,
                      worker_class=LeadWorker)
    pool.start(burst=burst)
