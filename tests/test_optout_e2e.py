"""An opt-out while three touches are pending on one number, through gunicorn, `leadbot worker`, Valkey,
the loopback Twilio emulator and a moved clock.

One lead cannot hold a retry, a nurture step and a reminder at once: an answer cancels the retries, and
only an answer reaches a nurture or handoff outcome. So the number has three requests, each reached
through its real path: a kitchen remodel walked to its nurture outcome (a drip step planned), a roof
repair walked to the SMS handoff (the rep's reminder scheduled at half the SLA), and a third request
whose call nobody answered (a retry planned). The prospect texts STOP.
"""

from __future__ import annotations

from datetime import timedelta

import redis
import requests
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from bot.store.handoff_tables import Handoff
from bot.store.touch_tables import Touch
from bot.twilio.signature import sign
from bot.twilio.twiml_player import CallLeg
from tests.conftest import API_KEY, lead_body
from tests.procs import Stack
from tests.test_e2e import http_post, stack_env
from tests.test_lifecycle_e2e import wait
from tests.timemachine import TimeMachine, a_weekday_at

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
PHONE = "+15125550100"
TOKEN = "e2e-token"


def calls(emulator) -> list[dict]:  # noqa: ANN001
    return emulator.of("/Calls.json")


def texts_to(emulator, phone: str) -> list[str]:  # noqa: ANN001
    return [m["form"]["Body"] for m in emulator.of("/Messages.json") if m["form"]["To"] == phone]


def new_call(stack: Stack, emulator, service: str) -> tuple[str, CallLeg, dict]:  # noqa: ANN001
    """POST a request for `service` and wait for its call; returns the lead id, the call's leg and form."""
    before = len(calls(emulator))
    resp = requests.post(stack.url + "/leads", json=lead_body(service=service), headers=HEADERS, timeout=5)
    assert resp.status_code == 202 and not resp.json().get("duplicate"), resp.text
    emulator.wait_for(lambda reqs: len([r for r in reqs if r["path"].endswith("/Calls.json")]) > before, 15)
    form = calls(emulator)[-1]["form"]
    sid = wait(lambda: next((c["sid"] for c in emulator.calls.values() if c["url"] == form["Url"]), None))
    leg = CallLeg(http_post, TOKEN, {"CallSid": sid, "From": form["From"], "To": form["To"],
                                     "AccountSid": "AC" + "1" * 32})
    return resp.json()["id"], leg, form


def view(stack: Stack, lead_id: str) -> dict:
    return requests.get(f"{stack.url}/leads/{lead_id}", headers=HEADERS, timeout=5).json()


def run_late(queue: Queue, job_ids: list[str]) -> list[Job]:
    """Run these jobs now whatever their schedule (as if their time had come), when Redis still has them."""
    jobs = []
    for job_id in job_ids:
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:
            continue
        ScheduledJobRegistry(job.origin, connection=queue.connection).remove(job_id)
        Queue(job.origin, connection=queue.connection)._enqueue_job(job)
        jobs.append(job)
    return jobs


def test_stop_blocks_a_pending_retry_nurture_step_and_reminder_on_one_number(
    tmp_path, db_url, redis_url, emulator
):
    clock_file = tmp_path / "clock"
    env = {**stack_env(tmp_path, db_url, redis_url, emulator), "CALLING_HOURS": "08:00-21:00",
           "LEADBOT_CLOCK_FILE": str(clock_file), "DEDUPE_WINDOW_SECONDS": "30"}
    queue = Queue("leadbot", connection=redis.Redis.from_url(redis_url))
    tm = TimeMachine(clock_file, db_url, queue)
    tm.travel(a_weekday_at(14, 0))
    stack = Stack(env, tmp_path).start()
    try:
        # 1. A kitchen remodel, answered and walked to the prequal flow's nurture outcome.
        nurtured, leg, form = new_call(stack, emulator, "kitchen remodel")
        leg.answer(form["Url"])
        for answer in ({"digits": "1"}, {"speech": "five grand"}, {"speech": "in the spring"},
                       {"speech": "I need to ask my wife"}):
            leg.reply(**answer)
        leg.notify(form["StatusCallback"], {"CallStatus": "completed"})
        assert view(stack, nurtured)["nurture"]["next"]["step"] == "check_in"

        # 2. A roof repair (after the dedupe window: its own lead), walked to the SMS handoff.
        tm.travel(tm.now() + timedelta(seconds=31))
        handed, leg, form = new_call(stack, emulator, "roofing")
        leg.answer(form["Url"])
        for answer in ({"speech": "no"}, {"speech": "yes"}, {"digits": "1"}, {"speech": "five grand"},
                       {"speech": "next week"}):
            leg.reply(**answer)
        assert "text you shortly" in " ".join(leg.heard), leg.heard
        leg.notify(form["StatusCallback"], {"CallStatus": "completed"})
        rep_phone = wait(lambda: next(iter([m["form"]["To"] for m in emulator.of("/Messages.json")]), None))

        def texted_handoff() -> str | None:
            with tm.engine.connect() as conn:
                return conn.execute(select(Handoff.id).where(Handoff.lead_id == handed,
                                                             Handoff.due_at.is_not(None))).scalar()

        handoff_id = wait(texted_handoff)  # the rep was texted: their reminder is scheduled
        assert ScheduledJobRegistry("leadbot", connection=queue.connection).get_job_ids().count(
            f"handoff-remind-{handoff_id}") == 1

        # 3. A third request whose call nobody answers: a retry in 2 minutes.
        tm.travel(tm.now() + timedelta(seconds=31))
        chased, leg, form = new_call(stack, emulator, "gutters")
        leg.notify(form["StatusCallback"], {"CallStatus": "no-answer"})
        wait(lambda: [t.kind for t in tm.planned(chased)] == ["retry"])
        assert [t.kind for t in tm.planned(nurtured)] == ["nurture"] * 2  # check_in, follow_up

        sent = (len(calls(emulator)), len(emulator.of("/Messages.json")))
        params = {"From": PHONE, "To": "+15125550000", "Body": "STOP", "MessageSid": "SM" + "2" * 32}
        url = stack.url + "/twilio/sms"
        resp = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(TOKEN, url, params)},
                             timeout=5)
        assert resp.status_code == 200

        # The rep who holds the roof repair is told not to call (a person knows, nobody calls them).
        told = wait(lambda: texts_to(emulator, rep_phone)[1:])
        assert told == ["Ada Lovelace +15125550100 has opted out of calls and texts. Please don't contact "
                        "them about this lead."]
        sent = (len(calls(emulator)), len(emulator.of("/Messages.json")))

        # Past all three on the clock; every job runs, the cancelled reminder's too if Redis kept it.
        tm.travel(tm.now() + timedelta(days=20))
        with tm.engine.connect() as conn:
            touch_ids = conn.execute(
                select(Touch.id).where(Touch.lead_id.in_([nurtured, handed, chased]))).all()
        jobs = run_late(queue, [f"touch-{t.id}" for t in touch_ids]
                        + [f"handoff-{k}-{handoff_id}" for k in ("remind", "escalate")])
        assert len(jobs) == 3  # the retry and two nurture steps ran; the reminder was cancelled in Redis
        wait(lambda: all(j.get_status(refresh=True) in ("finished", "failed") for j in jobs))
        assert (len(calls(emulator)), len(emulator.of("/Messages.json"))) == sent
        assert texts_to(emulator, PHONE) == [] and len(texts_to(emulator, rep_phone)) == 2

        def blocked(lead_id: str) -> dict[str, str]:
            return {e["data"]["kind"]: e["data"]["reason"] for e in view(stack, lead_id)["timeline"]
                    if e["type"] == "touch_blocked"}

        assert blocked(chased) == {"retry": "blocked: opted out"}
        assert blocked(nurtured) == {"nurture": "blocked: opted out"}
        assert blocked(handed) == {"rep_reminder": "blocked: opted out"}
        assert {view(stack, i)["status"] for i in (nurtured, handed, chased)} == {"opted_out"}
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        tm.close()
