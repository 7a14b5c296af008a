"""Opt-out everywhere, at once: keywords, phrasings, key 9 and speech stop the next send; START, HELP, DNC."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app import create_app
from bot.cli import main as leadbot
from bot.runtime import services as runtime
from bot.store.tables import Lead, OptOut
from bot.twilio.signature import sign
from bot.twilio.twiml_player import CallLeg
from tests.conftest import API_KEY, PUBLIC, drain, lead_body, make_settings
from tests.test_conversation import poster, sms

NEW_YORK = ZoneInfo("America/New_York")
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PHONE = "+12125550100"


@pytest.fixture
def table_app(tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    """The app with the shipped calling rules (CALLING_HOURS unset)."""
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS=None,
                                           BUSINESS_NAME="Acme Roofing"))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    yield application
    runtime.use(None)
    svc.close()


@pytest.fixture
def signed(table_app):  # noqa: ANN001, ANN201
    """Twilio's signature for table_app (the shared `signed` fixture would build a second app)."""
    token = table_app.extensions["leadbot"].webhook_token
    return lambda path, params: {"X-Twilio-Signature": sign(token, PUBLIC + path, params)}


def post(app, **fields) -> str:  # noqa: ANN001
    resp = app.test_client().post("/leads", json=lead_body(**fields), headers=AUTH)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def timeline(app, lead_id: str) -> list[dict]:  # noqa: ANN001
    return app.test_client().get(f"/leads/{lead_id}", headers=AUTH).get_json()["timeline"]


def scheduled_lead(app, movable_clock) -> str:  # noqa: ANN001
    """A lead sent at 22:30, waiting for its 08:00 call."""
    movable_clock.set_now(datetime(2026, 12, 2, 22, 30, tzinfo=NEW_YORK))
    lead_id = post(app, phone=PHONE)
    drain(app.extensions["leadbot"], rounds=1)
    assert [e["type"] for e in timeline(app, lead_id)][-1] == "scheduled", timeline(app, lead_id)
    return lead_id


def morning_blocks_the_call(app, emulator, movable_clock, lead_id: str) -> None:  # noqa: ANN001
    """At 08:00 the scheduled job runs, places nothing, and says why in the timeline."""
    movable_clock.set_now(datetime(2026, 12, 3, 8, 0, tzinfo=NEW_YORK))
    drain(app.extensions["leadbot"])
    assert emulator.of("/Calls.json") == []
    blocked = [e["data"] for e in timeline(app, lead_id) if e["type"] == "blocked"]
    assert blocked == [{"reason": "opted out", "rule": "opt-out", "touch": "call"}]


@pytest.mark.parametrize("body", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
                                  "OPTOUT",
                                  "stop all", "Please stop texting me", "stop sending me messages"])
def test_a_stop_text_blocks_the_scheduled_call(table_app, emulator, movable_clock, signed, body):
    lead_id = scheduled_lead(table_app, movable_clock)
    assert sms(table_app.test_client(), signed, PHONE, body) == ""  # the carrier confirms; we stay silent
    morning_blocks_the_call(table_app, emulator, movable_clock, lead_id)


@pytest.mark.parametrize("press", [{"digits": "9"}, {"speech": "take me off your list"}])
def test_keypress_9_or_speech_on_a_call_blocks_the_numbers_pending_call(table_app, emulator, movable_clock,
                                                                        press):
    svc = table_app.extensions["leadbot"]
    pending = scheduled_lead(table_app, movable_clock)  # a lead for one service, waiting for the morning
    registry = ScheduledJobRegistry(queue=svc.queue)
    for job_id in registry.get_job_ids():  # held back, so the morning's first drain runs only the new lead
        registry.remove(job_id)
    movable_clock.set_now(datetime(2026, 12, 3, 8, 0, tzinfo=NEW_YORK))
    calling = post(table_app, phone=PHONE, service="kitchen remodel")  # the same person, another service
    drain(svc)
    [call] = emulator.of("/Calls.json")
    leg = CallLeg(poster(table_app.test_client()), svc.webhook_token,
                  {"CallSid": next(iter(emulator.calls)), "From": call["form"]["From"], "To": PHONE})
    leg.answer(call["form"]["Url"])
    leg.reply(**press)
    with svc.sessions() as s:
        assert s.get(OptOut, PHONE) is not None
        assert s.get(Lead, calling).status == "opted_out"
    svc.queue.enqueue("bot.jobs.dispatch.contact", pending)  # the pending touch comes due
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1
    blocked = [e["data"]["reason"] for e in timeline(table_app, pending) if e["type"] == "blocked"]
    assert blocked == ["opted out"]


@pytest.mark.parametrize("word", ["START", "unstop"])
def test_start_opts_back_in_and_help_says_who_we_are(table_app, signed, word):
    client = table_app.test_client()
    lead_id = post(table_app, phone=PHONE)
    help_reply = sms(client, signed, PHONE, "HELP")
    assert help_reply.startswith("Acme Roofing:") and "Reply STOP to opt out" in help_reply
    sms(client, signed, PHONE, "STOP")
    assert sms(client, signed, PHONE, word) == "You're subscribed again. Reply STOP at any time to opt out."
    svc = table_app.extensions["leadbot"]
    with svc.sessions() as s:
        assert s.get(OptOut, PHONE) is None
    types = [e["type"] for e in timeline(table_app, lead_id)]
    assert types.index("opted_out") < types.index("opted_in")


def test_dnc_import_and_export(table_app, tmp_path, monkeypatch, capsys):
    svc = table_app.extensions["leadbot"]
    monkeypatch.setenv("DATABASE_URL", svc.settings.db_url)
    monkeypatch.setenv("LEADBOT_DATA_DIR", str(tmp_path / "var"))
    src = tmp_path / "dnc.csv"
    src.write_text("name,phone\nAda,+1 512 555 0100\nBob,(305) 555-0100\nAda again,512-555-0100\n"
                   "Eve,not a number\n")
    assert leadbot(["dnc", "import", str(src)]) == 1  # one unreadable row: reported, the rest imported
    err = capsys.readouterr().err
    assert "line 5: 'not a number'" in err and "imported 2 new number(s), 1 already on the list" in err
    resp = table_app.test_client().post("/leads", json=lead_body(phone="+1 512 555 0100"), headers=AUTH)
    assert resp.get_json()["status"] == "opted_out"
    out = tmp_path / "out.csv"
    assert leadbot(["dnc", "export", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["phone"], r["source"]) for r in rows] == [("+13055550100", "dnc import"),
                                                         ("+15125550100", "dnc import")]
    with svc.sessions() as s:
        assert s.scalar(select(OptOut.phone).where(OptOut.phone == "+13055550100")) is not None
