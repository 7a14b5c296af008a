"""TWILIO_CPS: one limiter in Redis for every call and text; fresh leads before retries and nurture."""

from __future__ import annotations

import threading

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
    assert limiter.try_acquire(pacing.LOW) is None  # the next slot is 100 s away: a retry does not reserve it
    assert 99 < limiter.try_acquire(pacing.HIGH) <= 100  # a fresh lead does
    conn.delete(pacing.KEY)
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
    import requests

    from tests.procs import Stack
    from tests.test_e2e import stack_env

    stack = Stack({**stack_env(tmp_path, db_url, redis_url, emulator), "TWILIO_CPS": "10"}, tmp_path)
    stack.start(workers=4)
    try:
        for n in range(12):
            resp = requests.post(stack.url + "/leads", json=lead_body(phone=f"+1 512 555 02{n:02d}"),
                                 headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
            assert resp.status_code == 202
        calls = emulator.wait_for(lambda reqs: sum(r["path"].endswith("/Calls.json") for r in reqs) >= 12,
                                  timeout=30)
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
