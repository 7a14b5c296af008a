"""Helpers for live handoff tests: leads, outcomes, signed webhooks, and running RQ jobs on demand."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from bot.flows.engine import Outcome
from bot.jobs.worker import LeadWorker
from bot.store.tables import Event, Lead, LeadStatus
from bot.twilio.signature import sign
from bot.twilio.twiml_player import CallLeg, parse_twiml
from tests.conftest import PUBLIC

ANSWERS = {"budget": {"min": 12000, "max": 12000, "currency": "USD"}, "timing": "right away",
           "authority": "me"}
ALICE, BOB, CARA, DAN = "+15125550101", "+15125550102", "+15125550103", "+15125550104"


def make_lead(services: Any, **kw: Any) -> str:
    """A qualified lead, as the flow leaves it before the handoff."""
    values: dict[str, Any] = {"name": "Maria Lopez", "phone": "+15125550100", "service": "roofing",
                              "status": LeadStatus.QUALIFIED.value, "answers": ANSWERS} | kw
    with services.sessions() as s:
        lead = Lead(**values)
        s.add(lead)
        s.commit()
        return lead.id


def outcome(action: str = "warm_transfer", **kw: Any) -> Outcome:
    """A flow outcome."""
    values: dict[str, Any] = {"id": "hot", "action": action, "say": "Great news, let me get a specialist.",
                              "answers": ANSWERS, "voice": "Polly.Joanna"} | kw
    return Outcome(**values)


def sms_handoff(services: Any, **kw: Any) -> str:
    """A qualified lead (see make_lead) offered to its matched rep by text; returns the lead's id."""
    from handoff.service import begin_sms_handoff

    lead_id = make_lead(services, **kw)
    with services.sessions() as s:
        begin_sms_handoff(services, s, s.get(Lead, lead_id), outcome("handoff_sms"))
        s.commit()
    return lead_id


def start_transfer(services: Any, lead_id: str, call_sid: str = "CAprospect") -> list[dict[str, Any]]:
    """What the prospect's voice webhook does on a warm_transfer outcome; returns the TwiML verbs."""
    from handoff.service import begin_warm_transfer

    result = outcome()
    response = VoiceResponse()
    response.say(result.say)
    with services.sessions() as s:
        begin_warm_transfer(services, s, s.get(Lead, lead_id), result, call_sid, response)
        s.commit()
    return parse_twiml(str(response))


def run_jobs(services: Any) -> None:
    """Run what is queued now with a real worker; scheduled jobs (timers) stay scheduled."""
    while services.queue.count:
        LeadWorker([services.queue], connection=services.redis).work(burst=True)


def scheduled(services: Any) -> list[str]:
    """Ids of jobs waiting for their time."""
    return ScheduledJobRegistry(queue=services.queue).get_job_ids()


def fire(services: Any, job_id: str) -> None:
    """A scheduled job's time has come: enqueue it now and run the queue."""
    registry = ScheduledJobRegistry(queue=services.queue)
    assert job_id in registry.get_job_ids(), f"{job_id} not scheduled; scheduled: {registry.get_job_ids()}"
    registry.remove(job_id)
    services.queue._enqueue_job(Job.fetch(job_id, connection=services.redis))
    run_jobs(services)


def events(services: Any, lead_id: str, prefix: str = "") -> list[str]:
    """The lead's event types in order."""
    with services.sessions() as s:
        rows = s.scalars(select(Event.type).where(Event.lead_id == lead_id).order_by(Event.id))
        return [t for t in rows if t.startswith(prefix)]


def event(services: Any, lead_id: str, type_: str) -> dict[str, Any]:
    """The data of the lead's only event of this type."""
    with services.sessions() as s:
        rows = s.scalars(select(Event.data).where(Event.lead_id == lead_id, Event.type == type_)).all()
    assert len(rows) == 1, f"{len(rows)} {type_} events"
    return rows[0]


def poster(client: FlaskClient):  # noqa: ANN201
    """A CallLeg poster that sends Twilio's requests to the app in-process."""

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        resp = client.post(url.removeprefix(PUBLIC), data=params, headers=headers)
        return resp.status_code, resp.get_data(as_text=True)

    return post


def twilio_post(client: FlaskClient, services: Any, url: str, params: dict[str, str]):  # noqa: ANN201
    """POST a signed Twilio webhook (status callbacks and the like)."""
    headers = {"X-Twilio-Signature": sign(services.webhook_token, url, params)}
    return client.post(url.removeprefix(PUBLIC), data=params, headers=headers)


def rep_leg(client: FlaskClient, services: Any, emulator: Any, phone: str) -> tuple[CallLeg, dict[str, Any]]:
    """The newest call the emulator placed to ``phone``, as a leg the test can answer."""
    calls = [c for c in emulator.calls.values() if c["to"] == phone]
    assert calls, f"no call to {phone}; calls: {[c['to'] for c in emulator.calls.values()]}"
    call = calls[-1]
    leg = CallLeg(poster(client), services.webhook_token,
                  {"CallSid": call["sid"], "From": services.settings.caller_id, "To": phone,
                   "Direction": "outbound-api", "AccountSid": call["account_sid"]})
    return leg, call
