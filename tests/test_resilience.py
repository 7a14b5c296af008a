"""Nothing accepted is lost: Redis down at intake, a worker dying mid-call, jobs lost from Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq.job import Job, JobStatus
from sqlalchemy import select, update

from bot.jobs.sweeper import sweep
from bot.runtime.queueing import JOB_TIMEOUT_S, contact_job_id
from bot.store.tables import Attempt, Event, Lead
from tests.conftest import API_KEY, drain, lead_body


def post_lead(client, **kw) -> str:  # noqa: ANN001
    resp = client.post("/leads", json=lead_body(**kw), headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def age(services, lead_id: str, seconds: int) -> None:  # noqa: ANN001
    with services.sessions() as s:
        lead = s.get(Lead, lead_id)
        lead.created_at -= timedelta(seconds=seconds)
        for attempt in s.scalars(select(Attempt).where(Attempt.lead_id == lead_id)):
            # bypass onupdate so the row really looks old
            s.execute(update(Attempt).where(Attempt.id == attempt.id)
                      .values(updated_at=attempt.updated_at - timedelta(seconds=seconds)))
        s.commit()


def test_redis_down_at_intake_then_swept_and_called_once(client, services, emulator, valkey):
    valkey.stop()  # the real server goes away
    try:
        resp = client.post("/leads", json=lead_body(), headers={"Authorization": f"Bearer {API_KEY}"})
        assert resp.status_code == 202  # still accepted: the DB has it
        lead_id = resp.get_json()["id"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["checks"]["redis"]["ok"] is False
    finally:
        valkey.start()
    services.redis.connection_pool.reset()
    services.redis.connection_pool.connection_kwargs["port"] = valkey.port  # it may come back on a new port
    services.redis.flushall()
    assert services.queue.count == 0  # nothing was enqueued
    assert sweep(services) == 0  # too fresh: a healthy queue may still be dispatching it
    age(services, lead_id, 30)
    assert sweep(services) == 1
    assert sweep(services) == 0  # its job is alive now: no second enqueue
    drain(services)
    assert len(emulator.of("/Calls.json")) == 1
    with services.sessions() as s:
        types = [e.type for e in s.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.id))]
    assert types == ["received", "requeued", "queued", "dialing"]


def test_worker_died_mid_request_is_reconciled_without_redialling(client, services, emulator):
    lead_id = post_lead(client)
    drain(services)
    assert len(emulator.of("/Calls.json")) == 1
    # Simulate a crash after Twilio created the call but before we saved its SID.
    with services.sessions() as s:
        s.execute(update(Attempt).where(Attempt.lead_id == lead_id)
                  .values(status="placing", provider_sid=None))
        s.commit()
    services.redis.flushall()  # and the job is gone from Redis
    age(services, lead_id, 600)
    assert sweep(services) == 1
    drain(services)
    assert len(emulator.of("/Calls.json")) == 1  # adopted, not redialled
    with services.sessions() as s:
        attempt = s.scalar(select(Attempt).where(Attempt.lead_id == lead_id))
    assert attempt.status == "placed" and attempt.provider_sid in emulator.calls


def test_sweeper_leaves_live_jobs_alone(client, services, emulator):
    lead_id = post_lead(client)
    age(services, lead_id, 60)
    assert sweep(services) == 0  # the job is still queued in Redis
    assert services.queue.count == 1


def left_started(services, lead_id: str, seconds_ago: int) -> None:  # noqa: ANN001
    """What a worker killed mid-job leaves in Redis: the job out of the queue, 'started', never ended."""
    job = Job.fetch(contact_job_id(lead_id), connection=services.redis)
    services.queue.remove(job.id)
    job.started_at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    job.save()
    job.set_status(JobStatus.STARTED)


def test_a_job_left_started_by_a_dead_worker_is_swept_once_its_timeout_has_passed(client, services, emulator):
    lead_id = post_lead(client)
    age(services, lead_id, 600)
    assert JOB_TIMEOUT_S == 30  # a contact job runs at most 30 s (one Twilio request of at most 10)
    left_started(services, lead_id, 25)
    assert sweep(services) == 0  # within its timeout the job may still be running somewhere
    assert services.queue.count == 0
    # A minute on, no live worker can still hold it (RQ itself would notice at its 10-minute maintenance).
    left_started(services, lead_id, 60)
    assert sweep(services) == 1
    drain(services)
    assert len(emulator.of("/Calls.json")) == 1
    with services.sessions() as s:
        assert s.get(Lead, lead_id).status == "contacting"
        types = [e.type for e in s.scalars(select(Event).where(Event.lead_id == lead_id).order_by(Event.id))]
    assert types == ["received", "requeued", "queued", "dialing"]


def test_sweeper_lock_allows_one_sweeper_per_interval(services):
    from bot.jobs.sweeper import sweep_once_locked

    assert sweep_once_locked(services, 5) == 0
    assert sweep_once_locked(services, 5) is None


def test_healthz_ok(client):
    body = client.get("/healthz").get_json()
    assert body["ok"] is True and body["checks"]["db"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["telephony"] == "simulator"
