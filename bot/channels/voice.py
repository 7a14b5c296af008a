"""The voice channel: an answered outbound call, each Gather turn, and calls to our number."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from twilio.twiml.voice_response import VoiceResponse

from bot.channels import cadence, conversation, voice_render
from bot.channels.resume import resume_voice
from bot.flows import engine
from bot.flows.errors import FlowsError
from bot.runtime.services import Services
from bot.store.leads import insert_event
from bot.store.prepared import raw_session
from bot.store.tables import Conversation, Lead, LeadStatus
from bot.store.timeline import EventType, record

log = logging.getLogger(__name__)

UNKNOWN_CALLER = ("Thanks for calling. This number returns calls about service requests. Please send us a "
                  "request on our website and we will call you right back. Goodbye.")
VOICEMAIL = ("Hi {first}, this is the team you just contacted. We're returning your request and will try "
             "you again shortly. Talk soon!")
UNAVAILABLE = "Sorry, something went wrong on our side. A specialist will call you back shortly. Goodbye."


def _action_url(svc: Services, conv: Any, state: dict[str, Any] | None = None) -> str:
    """The Gather action for this conversation's next turn."""
    return voice_render.turn_url(svc.settings.base_url, conv.id, state)


def _replayed(svc: Services, s: Any, call_sid: str, response: VoiceResponse) -> bool:
    """A webhook for a call that already has its conversation (Twilio retried, or someone replayed it):
    ask the current question again, or hang up if it is over; never start a second conversation."""
    conv = call_sid and s.scalar(select(Conversation).where(Conversation.call_sid == call_sid)
                                 .order_by(Conversation.created_at.desc()).limit(1))
    if not conv:
        return False
    prompts = engine.repeat(svc.flows.get(conv.flow_id, conv.flow_version), conv.state) if conv.open else []
    if prompts:
        voice_render.render(prompts, action_url=_action_url(svc, conv, conv.state), response=response)
    else:
        response.hangup()
    return True


def answer(svc: Services, attempt_id: str, call_sid: str, answered_by: str) -> str:
    """Our outbound call was answered: start the flow, or leave a short voicemail."""
    response = VoiceResponse()
    with svc.sessions() as s:
        lead = conversation.lead_on_call(s, attempt_id)
        if lead is None:
            response.hangup()
            return str(response)
        if _replayed(svc, s, call_sid, response):
            return str(response)
        if answered_by.startswith(("machine", "fax")):
            record(s, lead.id, EventType.MACHINE, answered_by=answered_by, sid=call_sid)
            lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"voicemail ({answered_by})"
            response.say(VOICEMAIL.format(first=lead.first_name))
            response.hangup()
            s.commit()
            return str(response)
        conversation.flow_for(svc, lead)  # a new flow version is stored before this session writes
        record(s, lead.id, EventType.ANSWERED, sid=call_sid, answered_by=answered_by or "unknown")
        cadence.stop(s, lead.id, "answered")
        conv, prompts = resume_voice(svc, s, lead, call_sid)
        lead.status, lead.status_reason = LeadStatus.IN_CONVERSATION.value, None
        voice_render.render(prompts, action_url=_action_url(svc, conv, conv.state), response=response)
        s.commit()
    return str(response)


def turn(svc: Services, conv_id: str, speech: str | None, digits: str | None,
         number: int | None = None) -> str:
    """One Gather result through the engine; returns the next TwiML.

    The prospect hears silence until this returns, so the common turn (another question) runs on
    one pooled connection with prepared statements (bot.store.prepared): a SELECT, an UPDATE, an INSERT
    per new answer and a commit. Only a turn that ends the conversation opens an ORM session, for
    the outcome's handoff or nurture work.
    """
    response = VoiceResponse()
    event = voice_render.event_from_gather({"SpeechResult": speech or "", "Digits": digits or ""})
    with raw_session(svc.engine) as conn:
        row = conn.first(conversation.OPEN_CONVERSATION, {"id": conv_id})
        if row is None:
            response.hangup()
            return str(response)
        if number is not None and number != row.state.get("turns"):
            # This turn was already taken (a retry or a replay): ask what the conversation asks now.
            flow = svc.flows.get(row.flow_id, row.flow_version)
            voice_render.render(engine.repeat(flow, row.state), action_url=_action_url(svc, row, row.state),
                                response=response)
            return str(response)
        try:
            state, prompts, outcome = conversation.advance(svc, row, event)
        except FlowsError as exc:
            log.error("conversation %s failed: %s", conv_id, exc)
            insert_event(conn, row.lead_id, EventType.FAILED, reason=str(exc)[:500])
            conn.commit()
            response.say(UNAVAILABLE)
            response.hangup()
            return str(response)
        voice_render.render(prompts, outcome, action_url=_action_url(svc, row, state), response=response)
        if outcome is None:
            with svc.writer.held():
                conversation.save(conn, row, state)
                conn.commit()
            return str(response)
    with svc.sessions() as s:
        conversation.save(s.connection(), row, state)
        conv, lead = s.get_one(Conversation, conv_id), s.get_one(Lead, row.lead_id)
        conversation.apply_outcome(svc, s, lead, conv, outcome, response=response)
        s.commit()
    return str(response)


def inbound(svc: Services, from_phone: str, call_sid: str, caller_name: str = "") -> str:
    """A call to our number (bot.channels.inbound)."""
    from bot.channels.inbound import inbound as take_call

    response = VoiceResponse()
    with svc.sessions() as s:
        if _replayed(svc, s, call_sid, response):  # the same call again: never a second conversation
            return str(response)
    return take_call(svc, conversation.normalize(svc, from_phone), call_sid, caller_name)
