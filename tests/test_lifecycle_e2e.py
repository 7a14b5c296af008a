"""The lifecycle through the real processes: gunicorn, `leadbot worker`, Valkey, the loopback Twilio
emulator and a moved clock shared by every process through LEADBOT_CLOCK_FILE."""

from __future__ import annotations

import time

import requests
from rq import Queue

from bot.twilio.twiml_player import CallLeg
from tests.conftest import API_KEY, lead_body
from tests.procs import Stack
from tests.test_e2e import http_post, stack_env
from tests.timemachine import TimeMachine, a_weekday_at


def wait(pred, timeout: float = 15.0):  # noqa: ANN001, ANN201
    """Poll a condition on real HTTP state (the processes work at their own pace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_machine_answered_call_leaves_voicemail_then_texts_then_retries(
    tmp_path, db_url, redis_url, emulator
):
    import redis

    clock_file = tmp_path / "clock"
    env = {
        **stack_env(tmp_path, db_url, redis_url, emulator),
        "CALLING_HOURS": "08:00-21:00",
        "LEADBOT_CLOCK_FILE": str(clock_file),
    }
    tm = TimeMachine(clock_file, db_url, Queue("leadbot", connection=redis.Redis.from_url(redis_url)))
    tm.travel(a_weekday_at(14, 0))
    stack = Stack(env, tmp_path).start()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        lead_id = requests.post(stack.url + "/leads", json=lead_body(), headers=headers, timeout=5).json()[
            "id"
        ]
        emulator.wait_for(lambda reqs: any(r["path"].endswith("/Calls.json") for r in reqs), timeout=15)
        form = emulator.of("/Calls.json")[0]["form"]
        [sid] = wait(lambda: list(emulator.calls))  # recorded as the request arrives, stored a moment later
        leg = CallLeg(
            http_post,
            "e2e-token",
            {"CallSid": sid, "From": form["From"], "To": form["To"], "AccountSid": "AC" + "1" * 32},
        )
        leg.answer(form["Url"], answered_by="")
        leg.amd(form["AsyncAmdStatusCallback"], "machine_end_beep")
        update = emulator.of(f"/Calls/{sid}.json")  # the web process redirected the live call (REST update)
        assert len(update) == 1
        leg.request(update[0]["form"]["Url"])
        assert "Call or text us back at (512) 555-0000" in " ".join(leg.heard)
        leg.notify(form["StatusCallback"], {"CallStatus": "completed"})
        due = wait(lambda: tm.next_due(lead_id))
        assert (due - tm.now()).total_seconds() <= 60  # the text within a minute
        tm.travel(due)
        tm.release(lead_id)
        emulator.wait_for(lambda reqs: any(r["path"].endswith("/Messages.json") for r in reqs), timeout=15)
        [text] = [m["form"]["Body"] for m in emulator.of("/Messages.json")]
        assert text.startswith("We just tried to call about your roofing request; reply CALL")
        retry = wait(lambda: tm.next_due(lead_id))
        tm.travel(retry)
        tm.release(lead_id)
        emulator.wait_for(
            lambda reqs: len([r for r in reqs if r["path"].endswith("/Calls.json")]) == 2, timeout=15
        )

        def settled() -> dict | None:  # the create reached Twilio; the worker records it just after
            got = requests.get(f"{stack.url}/leads/{lead_id}", headers=headers, timeout=5).json()
            return None if any(t["status"] == "sending" for t in got["touches"]) else got

        view = wait(settled)
        assert [(t["kind"], t["status"]) for t in view["touches"]][:2] == [
            ("voicemail_text", "sent"),
            ("retry", "sent"),
        ]
        assert "voicemail_left" in [e["type"] for e in view["timeline"]]
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
        tm.close()


def test_simulator_voicemail_button_plays_amd_and_a_person_can_still_talk(
    tmp_path, db_url, redis_url, emulator
):
    """The built-in simulator drives async AMD too: its Voicemail button answers, reports a machine, and
    follows the app's REST redirect to the voicemail; typing over it resumes the questions."""
    env = {
        **stack_env(tmp_path, db_url, redis_url, emulator),
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "TWILIO_API_BASE_URL": "",
        "TWILIO_PHONE_NUMBER": "",
    }
    stack = Stack(env, tmp_path).start()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        lead_id = requests.post(stack.url + "/leads", json=lead_body(), headers=headers, timeout=5).json()[
            "id"
        ]
        calls = wait(lambda: requests.get(stack.url + "/simulator/state", timeout=5).json()["calls"])
        sid = calls[0]["sid"]
        call = requests.post(f"{stack.url}/simulator/calls/{sid}/machine", json={}, timeout=15).json()
        assert any("Sorry we missed you" in line for line in call["heard"]), call["heard"]
        call = requests.post(
            f"{stack.url}/simulator/calls/{sid}/input", json={"speech": "hello? I'm here"}, timeout=15
        ).json()
        assert any("Sorry, I thought I'd reached your voicemail" in line for line in call["heard"])
        view = requests.get(f"{stack.url}/leads/{lead_id}", headers=headers, timeout=5).json()
        assert view["status"] == "in_conversation"
        assert "amd_corrected" in [e["type"] for e in view["timeline"]]
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
