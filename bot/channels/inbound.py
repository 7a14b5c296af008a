"""Calls to our number: a known lead is greeted by name and picks up where it stopped, a handed-off
lead is put through to its rep, and an unknown caller becomes a new lead on the default flow."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from bot.channels import cadence, callwatch, voice_render
from bot.channels.resume import resume_voice, stopped
from bot.runtime.services import Services
from bot.store.handoff_tables import Handoff, WaitingLead
from bot.store.leads import lead_timezone
from bot.store.tables import Lead, LeadStatus, OptOut, utcnow
from bot.store.timeline import EventType, record

WELCOME_BACK = "Hi {first}, thanks for calling back."
PICK_UP = "Hi {first}, thanks for calling back. Let's pick up where we left off."
TO_REP = "Hi {first}, thanks for calling back. Let me put you through to {rep}."
WAITING = ("Hi {first}, thanks for calling back. Your request is with our team, and the next free "
           "specialist will call you. Goodbye.")
OPTED_OUT = "Thanks for calling. You asked us not to contact you, so we won't. Goodbye."
WITH_REP = {LeadStatus.QUALIFIED.value, LeadStatus.TRANSFERRING.value, LeadStatus.HANDED_OFF.value}
INBOUND_SOURCE = "inbound-call"


def inbound(svc: Services, phone: str | None, call_sid: str, caller_name: str = "") -> str:
    """TwiML for a call to our number from `phone` (E.164, or None when withheld)."""
    response = VoiceResponse()
    with svc.sessions() as s:
        lead = phone and s.scalar(
            select(Lead).where(Lead.phone == phone).order_by(Lead.created_at.desc()).limit(1)
        )
        if phone and s.get(OptOut, phone) is not None:
            response.say(OPTED_OUT)
            response.hangup()
            return str(response)
        if not lead or lead.status in (LeadStatus.DISQUALIFIED.value, LeadStatus.OPTED_OUT.value):
            lead = _new_lead(s, phone, call_sid, caller_name) if phone else None
            if lead is None:
                response.say(
                    "Thanks for calling. Please call again from a number that shows caller ID. Goodbye."
                )
                response.hangup()
                return str(response)
        else:
            record(s, lead.id, "inbound_call", sid=call_sid, status=lead.status)
            cadence.stop(s, lead.id, "the lead called us")
        if lead.status in WITH_REP and _ring_rep(svc, s, lead, call_sid, response):
            s.commit()
            return str(response)
        if lead.status in WITH_REP and _waiting(s, lead):  # keep its place; the questions are done
            response.say(WAITING.format(first=lead.first_name))
            response.hangup()
            s.commit()
            return str(response)
        first = lead.first_name if lead.source != INBOUND_SOURCE else ""
        preface = (
            (PICK_UP if stopped(s, lead.id) else WELCOME_BACK).format(first=first).replace("Hi ,", "Hi,")
        )
        conv, prompts = resume_voice(svc, s, lead, call_sid, preface if first else None)
        lead.status, lead.status_reason = LeadStatus.IN_CONVERSATION.value, "called us"
        callwatch.watch(svc, s, lead, conv)  # a hang-up mid-questions posts nothing
        url = voice_render.turn_url(svc.settings.base_url, conv.id, conv.state)
        voice_render.render(prompts, action_url=url, response=response)
        s.commit()
    return str(response)


def _new_lead(s: Session, phone: str, call_sid: str, caller_name: str) -> Lead:
    """An unknown caller: a new lead (they called us, which is their consent to this call)."""
    now = utcnow()
    lead = Lead(
        name=(caller_name or "Caller").strip()[:120],
        phone=phone,
        channel="call",
        source=INBOUND_SOURCE,
        timezone=lead_timezone(phone),
        consent=True,
        consent_at=now,
        consent_text="inbound call to our number",
        status=LeadStatus.IN_CONVERSATION.value,
        created_at=now,
        updated_at=now,
    )
    s.add(lead)
    s.flush()
    record(s, lead.id, EventType.RECEIVED, source=INBOUND_SOURCE, channel="call", sid=call_sid)
    return lead


def _waiting(s: Session, lead: Lead) -> bool:
    """On the unassigned list: restarting the questions would take it off (the drain withdraws a
    lead that is not 'qualified'), and the next free rep would never be offered it."""
    row = s.get(WaitingLead, lead.id)
    return row is not None and row.assigned_at is None


def _ring_rep(svc: Services, s: Session, lead: Lead, call_sid: str, response: VoiceResponse) -> bool:
    """Put a handed-off lead through to its rep, the usual warm transfer (hold, whisper, accept)."""
    from handoff import transfer
    from handoff.answer_text import readable_answers
    from handoff.twiml import hold_in_conference

    handoff = s.scalar(
        select(Handoff).where(Handoff.lead_id == lead.id).order_by(Handoff.created_at.desc()).limit(1)
    )
    if handoff is None:
        return False
    response.say(TO_REP.format(first=lead.first_name, rep=handoff.rep_name.split(" ")[0]))
    t, _ = transfer.start(
        svc, s, lead, [handoff.rep_phone], readable_answers(lead.answers, None), call_sid, None, 1, utcnow()
    )
    hold_in_conference(
        response,
        t.conference,
        hold_url=transfer.webhook_url(svc, "hold", t.id, n=1),
        events_url=transfer.webhook_url(svc, "conference", t.id),
        after_url=transfer.webhook_url(svc, "after", t.id),
    )
    record(s, lead.id, "inbound_to_rep", rep=handoff.rep_name)
    return True
