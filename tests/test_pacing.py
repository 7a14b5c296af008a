"""TWILIO_CPS: one limiter in Redis for every call and text; fresh leads before retries and nurture."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import redis

from app import create_app
from bot.jobs.worker import LeadWorker
from bot.runtime import pacing
from bot.runtime import services as runtime
from bot.runtime.queueing import CONTACT_JOB, enqueue_low
from tests.conftest import API_KEY, drain, lead_body, make_settings


@pytest.fixture
def paced_app(request, tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    """The app with the TWILIO_CPS the test passes as its parameter."""
    cps = request.param
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, TWILIO_CPS=cps))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    yield application
    runtime.use(None)
    svc.close()


def post(app, **fields) -> str:  # noqa: ANN001
    auth = {"Authorization": f"Bearer {API_KEY}"}
    resp = app.test_client().post("/leads", json=lead_body(**fields), headers=auth)
    assert resp.status_code == 202
    return resp.get_json()["id"]


def test_concurrent_senders_get_distinct_slots_one_interval_apart(redis_url):
    """Eight threads with their own connections take 80 slots at once: no two share a slot, none is lost."""
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        limiter = pacing.Limiter(redis.Redis.from_url(redis_url), cps=0.01, high_queue_key="rq:queue:none")
        for _ in range(10):
            wait = limiter.try_acquire(pacing.HIGH)  # a reservation: nobody sleeps in this test
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waits.sort()
    gaps = [b - a for a, b in zip(waits, waits[1:], strict=False)]
    assert len(waits) == 80 and waits[0] < 1
    assert all(99 < gap < 101 for gap in gaps), gaps  # 1/CPS = 100 s apart, minus the test's own runtime


def test_low_priority_takes_only_a_free_slot_and_never_one_a_fresh_lead_waits_for(redis_url):
    conn = redis.Redis.from_url(redis_url)
    limiter = pacing.Limiter(conn, cps=0.01, high_queue_key="rq:queue:fresh")
    assert limiter.try_acquire(pacing.LOW) == 0  # free now: taken
    assert limiter.try_acquire(pacing.LOW) is None  # a retry is in line: another does not join
    assert limiter._run("go", conn.zrange(pacing.PENDING, 0, 0)[0].decode()) == 0  # it sends
    assert limiter.try_acquire(pacing.LOW) is None  # the next turn is 100 s away: a retry does not wait for it
    assert 99 < limiter.try_acquire(pacing.HIGH) <= 100  # a fresh lead does
    conn.delete(*pacing.KEYS)
    conn.rpush("rq:queue:fresh", "a-fresh-lead")
    assert limiter.try_acquire(pacing.LOW) is None  # free, but a fresh lead is queued
    assert limiter.try_acquire(pacing.HIGH) == 0


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_a_waiting_retry_goes_back_to_its_queue_when_a_fresh_lead_arrives(paced_app):
    svc = paced_app.extensions["leadbot"]
    svc.limiter.try_acquire(pacing.HIGH)  # the only slot for 100 s is taken
    retry = enqueue_low(svc.low_queue, CONTACT_JOB, "a-retry", job_id="retry-1")
    svc.low_queue.pop_job_id()  # as a worker's dequeue does
    post(paced_app)  # a fresh lead lands in the high-priority queue
    worker = LeadWorker([svc.queue, svc.low_queue], connection=svc.redis)
    assert worker._admit(retry, svc.low_queue) is False
    assert svc.low_queue.job_ids == ["retry-1"]  # back at the front, not lost


@pytest.mark.parametrize("paced_app", [20], indirect=True)
def test_every_call_waits_for_its_slot_and_fresh_leads_dial_first(paced_app, emulator):
    svc = paced_app.extensions["leadbot"]
    backlog = [post(paced_app, phone=f"+1 512 555 01{n:02d}") for n in range(5)]
    svc.queue.empty()
    for lead_id in backlog:  # the same leads as due retries, in the low-priority queue
        enqueue_low(svc.low_queue, CONTACT_JOB, lead_id)
    post(paced_app, phone="+1 512 555 0199")  # a fresh lead, sent last
    drain(svc)
    calls = emulator.of("/Calls.json")
    assert len(calls) == 6
    assert calls[0]["form"]["To"] == "+15125550199"
    gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps) > 0.045, gaps  # 1/20 s apart, less scheduling noise


def test_gunicorn_and_a_pool_of_workers_share_one_limit(tmp_path, db_url, redis_url, emulator):
    """A burst through real gunicorn and a `leadbot worker` pool of 4: calls leave 1/CPS apart."""
    from tests.procs import Stack
    from tests.test_e2e import stack_env

    stack = Stack({**stack_env(tmp_path, db_url, redis_url, emulator), "TWILIO_CPS": "10"}, tmp_path)
    stack.start(workers=4)
    try:
        calls = post_and_wait_for_calls(stack, emulator, [f"+1 512 555 02{n:02d}" for n in range(12)])
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
    times = sorted(r["at"] for r in calls if r["path"].endswith("/Calls.json"))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) > 0.05, gaps  # 1/10 s apart across four processes, less scheduling noise
    assert all(b - a > 0.9 for a, b in zip(times, times[10:], strict=False)), times  # never 11 in a second
    assert times[-1] - times[0] < 11 * 0.1 + 0.5  # and no slower than the limit


def test_turns_go_in_acceptance_order_whichever_job_is_ready_first(redis_url):
    """Three jobs in line by acceptance; the last one is ready first: it holds its turn for those ahead."""
    limiter = pacing.Limiter(redis.Redis.from_url(redis_url), cps=0.01, high_queue_key="rq:queue:none")
    now_us = int(time.time() * 1_000_000)
    first, second, third = (limiter.reserve(order=now_us + n)[0] for n in (1, 2, 3))
    hold = pacing.HOLD * limiter.interval_us
    assert 0 < limiter._run("go", third) <= hold  # two jobs ahead are still preparing: it waits for them
    assert limiter._run("go", first) == 0  # the first accepted goes at once
    assert 99e6 < limiter._run("go", third) <= 100e6  # the next turn is 1/CPS later
    assert 99e6 < limiter._run("go", second) <= 100e6  # the second, ready now, takes it: it is ahead
    assert 199e6 < limiter._run("go", third) <= 200e6  # and the third's turn is one more interval away


def test_a_ticket_behind_one_holding_its_turn_waits_behind_it(redis_url):
    """An idle line: A is still preparing, B (ready) holds the turn for it, C (ready) must not jump B.

    The turn after a holder counts from the holder's own turn, not from a send long ago: before,
    C went at once while B still waited for A (in a burst, the third lead was dialled first).
    """
    limiter = pacing.Limiter(redis.Redis.from_url(redis_url), cps=0.01, high_queue_key="rq:queue:none")
    now_us = int(time.time() * 1_000_000)
    a, b, c = (limiter.reserve(order=now_us + n)[0] for n in (1, 2, 3))
    hold = pacing.HOLD * limiter.interval_us
    assert 0 < limiter._run("go", b) <= hold
    assert hold + 99e6 < limiter._run("go", c) <= hold + 100e6  # one interval after B's held turn
    assert limiter._run("go", a) == 0  # A, ready at last, goes first
    assert 99e6 < limiter._run("go", b) <= 100e6  # then B, one interval later
    assert 199e6 < limiter._run("go", c) <= 200e6  # then C


def test_a_job_far_back_in_line_sleeps_until_its_turn_is_near_before_preparing(redis_url):
    """At 5 calls a second the third ticket's turn is 400 ms away: its worker sleeps until 150 ms
    before it (leaving the CPU to the jobs ahead), asking again every half interval as the line moves."""
    slept: list[float] = []
    conn = redis.Redis.from_url(redis_url)
    limiter = pacing.Limiter(conn, cps=5, high_queue_key="rq:queue:none")
    now_us = int(time.time() * 1_000_000)
    first, second, third = (limiter.reserve(order=now_us + n) for n in (1, 2, 3))
    assert limiter.defer(first) < 0.05  # its turn is now: no sleep

    def line_moves(seconds: float) -> None:  # each time it sleeps, the lead ahead is sent (or released)
        slept.append(seconds)
        limiter.release((first if len(slept) == 1 else second)[0])

    limiter._sleep = line_moves
    limiter.defer(third)
    # 400 ms away: it sleeps half an interval; 200 ms away: the 50 ms left; 0 ms away: it goes to work
    assert slept == [pytest.approx(0.1), pytest.approx(0.05)]
    assert conn.zscore(pacing.PENDING, third[0]) == now_us + 3  # still in line, in its place


def test_a_send_for_a_handed_off_lead_takes_the_next_turn_ahead_of_fresh_leads(redis_url):
    """A rep's leg while the prospect holds must not wait behind a burst of fresh leads: A is
    preparing, B is ready and holds its turn for A; the urgent send goes at once, and B after it."""
    slept: list[float] = []
    limiter = pacing.Limiter(redis.Redis.from_url(redis_url), cps=0.01, high_queue_key="rq:queue:none",
                             sleep=slept.append)
    now_us = int(time.time() * 1_000_000)
    _a, b = (limiter.reserve(order=now_us + n)[0] for n in (1, 2))
    assert 0 < limiter._run("go", b) <= pacing.HOLD * limiter.interval_us
    assert limiter.try_acquire(pacing.HIGH) > pacing.HOLD * 100  # a plain send would queue behind both
    assert limiter.acquire(pacing.URGENT) < 1 and slept == []  # granted at once, no sleep
    assert 99e6 < limiter._run("go", b) <= 100e6  # B's turn is the one after it


def test_nobody_waits_for_a_job_that_is_still_preparing_past_the_hold(redis_url):
    conn = redis.Redis.from_url(redis_url)
    limiter = pacing.Limiter(conn, cps=0.01, high_queue_key="rq:queue:none")
    slow, ready = limiter.reserve(order=1)[0], limiter.reserve(order=2)[0]
    conn.hset(pacing.READY, ready, 1)  # it has waited since long ago
    assert limiter._run("go", ready) == 0  # the job ahead is not ready: it does not block the line
    assert 99e6 < limiter._run("go", slow) <= 100e6  # and when it is, it goes one interval after the last send


def test_a_place_given_back_frees_the_line_for_low_priority_work(redis_url):
    conn = redis.Redis.from_url(redis_url)
    limiter = pacing.Limiter(conn, cps=0.01, high_queue_key="rq:queue:none")
    held, _order = limiter.reserve()
    assert limiter.try_acquire(pacing.LOW) is None  # a fresh lead is in line: a retry may not go
    limiter.release(held)  # its job did not send (not dispatchable, or an email)
    assert conn.zcard(pacing.PENDING) == 0
    assert limiter.try_acquire(pacing.LOW) == 0  # the turn is free again


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_a_lead_is_in_line_from_its_enqueue_so_one_dequeued_late_keeps_its_turn(paced_app):
    """Lead A is accepted before B, but B's job is dequeued and ready first: B holds the turn for A."""
    svc = paced_app.extensions["leadbot"]
    a, b = post(paced_app, phone="+1 512 555 0110"), post(paced_app, phone="+1 512 555 0111")
    job_b = svc.queue.fetch_job(f"contact-{b}")
    ticket_b, order_b = svc.limiter.reserve(job_b.id, pacing.order_of(job_b.enqueued_at))
    assert 0 < svc.limiter._run("go", ticket_b, order_b) <= pacing.HOLD * svc.limiter.interval_us
    job_a = svc.queue.fetch_job(f"contact-{a}")
    ticket_a, order_a = svc.limiter.reserve(job_a.id, pacing.order_of(job_a.enqueued_at))
    assert svc.limiter._run("go", ticket_a, order_a) == 0  # A goes first, as it was accepted first
    assert 99e6 < svc.limiter._run("go", ticket_b, order_b) <= 100e6


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_a_leads_place_in_line_is_when_leadbot_accepted_it(paced_app):
    """The line's order is each contact job's enqueued_at, the acceptance time the lead's timeline
    shows: two web processes enqueueing in the same millisecond line up as their records say."""
    svc = paced_app.extensions["leadbot"]
    ids = [post(paced_app, phone=f"+1 512 555 01{n:02d}") for n in range(20, 23)]
    for lead_id in ids:
        job = svc.queue.fetch_job(f"contact-{lead_id}")
        assert svc.redis.zscore(pacing.PENDING, job.id) == pacing.order_of(job.enqueued_at)


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_an_email_lead_takes_no_turn_and_its_worker_does_not_wait_for_one(paced_app):
    """An email lead sends no call or text: it is not lined up, so it never holds the line or waits
    behind it. Here a call lead is ahead and its turn is 100 s away; the email still goes at once."""
    svc = paced_app.extensions["leadbot"]
    call = post(paced_app, phone="+1 512 555 0130")
    mail = post(paced_app, phone="+1 512 555 0131", channel="email", email="bo@example.com")
    assert svc.redis.zscore(pacing.PENDING, f"contact-{call}") is not None
    assert svc.redis.zscore(pacing.PENDING, f"contact-{mail}") is None
    svc.limiter.try_acquire(pacing.HIGH)  # a send just went: the call lead's turn is 100 s off
    svc.queue.remove(f"contact-{call}")
    started = time.monotonic()
    LeadWorker([svc.queue], connection=svc.redis).work(burst=True)  # the email lead's job only
    assert time.monotonic() - started < 5  # not the 100 s turn (nor the 5 s MAX_DEFER_S)
    with svc.sessions() as s:
        from bot.store.tables import Lead

        assert s.get(Lead, mail).status not in ("received", "queued"), s.get(Lead, mail).status


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_the_worker_sends_for_handoff_jobs_as_urgent_and_for_contact_jobs_in_line(paced_app):
    svc = paced_app.extensions["leadbot"]
    seen: list[tuple[str, str, str]] = []

    class Spy(LeadWorker):
        def perform_job(self, job, queue, execution):  # noqa: ANN001, ANN201
            seen.append((job.func_name, queue.name, pacing.priority.get()))
            return super().perform_job(job, queue, execution)

    svc.queue.enqueue("handoff.jobs.remind", "no-such-handoff")
    svc.queue.enqueue(CONTACT_JOB, "no-such-lead", job_id="contact-no-such-lead")
    enqueue_low(svc.low_queue, "handoff.jobs.remind", "another")  # the low queue stays low
    Spy([svc.queue, svc.low_queue], connection=svc.redis).work(burst=True)
    assert seen == [("handoff.jobs.remind", "leadbot", pacing.URGENT), (CONTACT_JOB, "leadbot", pacing.HIGH),
                    ("handoff.jobs.remind", "leadbot-low", pacing.LOW)]


@pytest.mark.parametrize("paced_app", [0.01], indirect=True)
def test_the_worker_reserves_a_contact_jobs_slot_before_running_it_and_gives_back_an_unused_one(paced_app):
    """A real LeadWorker: the job's ticket is held in line while it runs; a job that does not send returns it."""
    svc = paced_app.extensions["leadbot"]
    seen: list[tuple[int, int]] = []

    class Spy(LeadWorker):
        def perform_job(self, job, queue, execution):  # noqa: ANN001, ANN201
            seen.append((svc.redis.zcard(pacing.PENDING), svc.redis.hlen(pacing.READY)))
            return super().perform_job(job, queue, execution)

    svc.queue.enqueue(CONTACT_JOB, "no-such-lead", job_id="contact-no-such-lead")  # skipped: sends nothing
    Spy([svc.queue], connection=svc.redis).work(burst=True)
    assert seen == [(1, 0)]  # in line before the job ran
    assert svc.redis.zcard(pacing.PENDING) == 0  # and out of it after
    assert svc.limiter.try_acquire(pacing.HIGH) == 0  # the next send goes now, not after a hold


def test_leads_are_dialled_in_the_order_they_were_accepted_by_a_pool_of_workers(tmp_path, db_url, redis_url,
                                                                               emulator):
    """Four worker processes whose claims finish in any order: the calls still leave in 202 order.

    Every claim waits on the database's write lock, held by the test until four jobs run; when it
    is released the four claims finish in whatever order the scheduler picks. Slots reserved at
    the send went to them in that order; slots reserved when each job was dequeued do not.
    """
    from rq.registry import StartedJobRegistry

    if not db_url.startswith("sqlite"):
        # On PostgreSQL the stall below (LOCK TABLE attempts) released the claims unevenly: one
        # always went first and the other three over half a second later, so the claims do not
        # finish "in any order" as this test needs. Not investigated; the order itself is proven
        # on SQLite here and through Redis by the tests above.
        pytest.skip("the claims' stall is SQLite's writer lock")

    from tests.procs import Stack
    from tests.test_e2e import stack_env

    stack = Stack({**stack_env(tmp_path, db_url, redis_url, emulator), "TWILIO_CPS": "1"}, tmp_path)
    stack.start(workers=0)  # web only: the leads wait in the queue
    phones, conn = [f"+1512555{n:04d}" for n in range(300, 306)], redis.Redis.from_url(redis_url)
    try:
        calls_made = post_and_wait_for_calls(stack, emulator, phones, wait=False)
        with writes_held(db_url):
            stack.start_worker("pool", processes=4)
            started = StartedJobRegistry("leadbot", connection=conn)
            deadline = time.monotonic() + 30
            while len(started) < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(started) == 4
        calls = calls_made()
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
    dialled = [r["form"]["To"] for r in sorted(calls, key=lambda r: r["at"]) if r["path"].endswith("/Calls.json")]
    assert dialled == phones, [(r["form"]["To"][-2:], round(r["at"] - calls[0]["at"], 3)) for r in calls]


@contextlib.contextmanager
def writes_held(db_url: str):  # noqa: ANN201
    """Hold SQLite's writer lock (bot.store.database.WriterLock): every claim's writes wait for it."""
    from sqlalchemy import create_engine

    from bot.store.database import WriterLock

    engine = create_engine(db_url)
    lock = WriterLock(engine)
    try:
        with lock.held():
            yield
    finally:
        lock.close()
        engine.dispose()


def post_and_wait_for_calls(stack, emulator, phones: list[str], wait: bool = True):  # noqa: ANN001, ANN201
    """POST one lead per phone, in order, to the running stack; then the Calls.json requests that follow.

    With wait=False, a function that waits for them is returned instead, for the test to call later.
    """
    import requests

    for phone in phones:
        resp = requests.post(stack.url + "/leads", json=lead_body(phone=phone),
                             headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
        assert resp.status_code == 202

    def calls() -> list[dict]:
        return emulator.wait_for(
            lambda reqs: sum(r["path"].endswith("/Calls.json") for r in reqs) >= len(phones), timeout=30)
    return calls() if wait else calls
