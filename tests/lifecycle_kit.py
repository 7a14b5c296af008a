"""Helpers for the lifecycle tests: a moved clock, Twilio's side of calls and texts, and a worker run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from bot.store.tables import Event, Lead
from bot.twilio.twiml_player import CallLeg
from tests.conftest import PUBLIC
from tests.timemachine import TimeMachine, a_weekday_at

TOKEN_OF = "webhook_token"


def work(services) -> None:  # noqa: ANN001
    """Run every job in the queue now (a real RQ worker, burst mode); scheduled ones wait for their time."""
    from bot.jobs.worker import LeadWorker

    queues = [services.queue, services.low_queue]  # fresh leads first, then retries and nurture
    if sum(q.count for q in queues):
        worker = LeadWorker(queues, connection=services.redis)
        # As in conftest.drain: no command channel for a burst (its thread's join could wait 60 s).
        worker.subscribe = worker.unsubscribe = lambda: None
        worker.work(burst=True)


def poster(client):  # noqa: ANN001, ANN201
    """Twilio's POSTs to the app, through the Flask test client."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        resp = client.post(url.removeprefix(PUBLIC), data=params, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    return post


def leg_for(client, services, emulator, index: int = -1) -> tuple[CallLeg, dict[str, Any]]:  # noqa: ANN001
    """The CallLeg of the index-th call the app placed, and that call's create request."""
    form = emulator.of("/Calls.json")[index]["form"]
    sid = next(c["sid"] for c in emulator.calls.values() if c["url"] == form["Url"])
    leg = CallLeg(
        poster(client),
        services.webhook_token,
        {"CallSid": sid, "From": form["From"], "To": form["To"], "AccountSid": "AC" + "0" * 32},
    )
    return leg, form


def status(leg: CallLeg, form: dict[str, str], call_status: str) -> None:
    """Twilio's final status callback for the call."""
    leg.notify(form["StatusCallback"], {"CallStatus": call_status})


def texts(emulator) -> list[str]:  # noqa: ANN001
    """Bodies of every text the app sent."""
    return [m["form"]["Body"] for m in emulator.of("/Messages.json")]


def events(services, lead_id: str, prefix: str = "") -> list[tuple[str, dict]]:  # noqa: ANN001
    """(type, data) of the lead's events, oldest first."""
    with services.sessions() as s:
        rows = s.execute(
            select(Event.type, Event.data).where(Event.lead_id == lead_id).order_by(Event.id)
        ).all()
    return [(r.type, r.data) for r in rows if r.type.startswith(prefix)]


def lead_row(services, lead_id: str) -> Lead:  # noqa: ANN001
    with services.sessions() as s:
        return s.get_one(Lead, lead_id)


def sms_in(client, services, signed, body: str, phone: str = "+15125550100") -> str:  # noqa: ANN001
    """The prospect texts our number; returns the reply TwiML."""
    params = {"From": phone, "To": services.settings.caller_id, "Body": body, "MessageSid": "SM" + "1" * 32}
    resp = client.post("/twilio/sms", data=params, headers=signed("/twilio/sms", params))
    assert resp.status_code == 200, resp.text
    return resp.get_data(as_text=True)


def moved_clock(tmp_path, monkeypatch, db_url: str, services) -> Iterator[TimeMachine]:  # noqa: ANN001
    """For a `tm` fixture: the clock moved to a Tuesday 14:00 in Austin, for the app and its jobs."""
    path = tmp_path / "clock"
    monkeypatch.setenv("LEADBOT_CLOCK_FILE", str(path))
    machine = TimeMachine(path, db_url, services.queue)
    machine.travel(a_weekday_at(14, 0))
    yield machine
    machine.close()
