"""Answering machines: asynchronous detection, a short voicemail from the flow, and a person who was
taken for a machine picking the conversation back up."""

from __future__ import annotations

import logging
from typing import Any

import phonenumbers
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from bot.channels import cadence, conversation, voice_render
from bot.runtime.services import Services
from bot.store.tables import Attempt, Conversation, Lead, LeadStatus
from bot.store.timeline import EventType, record

log = logging.getLogger(__name__)

CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
FALLBACK_VOICEMAIL = (
    "Hi {first}, this is the team you just contacted. Sorry we missed you. Call or text us back at {number}."
)
MISTAKEN = "Oh, hello! Sorry, I thought I'd reached your voicemail."


def call_options(svc: Services, attempt_id: str) -> dict[str, Any]:
    """Calls.create arguments: async AMD, so a person hears the greeting at once while detection runs."""
    base = svc.settings.base_url
    return {
        "url": f"{base}/twilio/voice/answer/{attempt_id}",
        "method": "POST",
        "status_callback": f"{base}/twilio/status/call/{attempt_id}",
        "status_callback_method": "POST",
        "status_callback_event": CALL_EVENTS,
        "machine_detection": "DetectMessageEnd",
        "async_amd": "true",
        "async_amd_status_callback": f"{base}/twilio/voice/amd/{attempt_id}",
        "async_amd_status_callback_method": "POST",
        "timeout": svc.settings.ring_timeout_seconds,
    }


def spoken_number(phone: str) -> str:
    """Our number the way a voicemail should say it: (512) 555-0000."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return phone


def amd_result(svc: Services, attempt_id: str, call_sid: str, answered_by: str) -> None:
    """Twilio's verdict: at the end of a machine's greeting, leave the voicemail and plan the text."""
    machine = answered_by.startswith("machine_end") or answered_by == "fax"
    with svc.sessions() as s:
        attempt = s.get(Attempt, attempt_id)
        lead = s.get(Lead, attempt.lead_id) if attempt else None
        if lead is None:
            return
        record(s, lead.id, "amd", answered_by=answered_by, sid=call_sid)
        if not machine or lead.status not in (LeadStatus.CONTACTING.value, LeadStatus.IN_CONVERSATION.value):
            s.commit()
            return
        record(s, lead.id, EventType.MACHINE, answered_by=answered_by, sid=call_sid)
        # Closed, not lost: a person who speaks over the voicemail resumes it (see heard()).
        for conv in s.scalars(
            select(Conversation).where(Conversation.lead_id == lead.id, Conversation.open.is_(True))
        ):
            conv.open, conv.outcome = False, "voicemail"
        lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"voicemail ({answered_by})"
        cadence.unanswered(svc, s, lead, "machine")
        s.commit()
    try:
        if answered_by == "fax":
            svc.twilio.calls(call_sid).update(status="completed")
        else:
            svc.twilio.calls(call_sid).update(
                url=f"{svc.settings.base_url}/twilio/voice/voicemail/{attempt_id}", method="POST"
            )
    except TwilioRestException as exc:  # the call ended meanwhile: the text still goes out
        log.warning("voicemail redirect for %s failed: %s", call_sid, exc)


def voicemail(svc: Services, attempt_id: str) -> str:
    """The voicemail, inside a Gather: if a person speaks or presses a key, heard() resumes the flow."""
    response = VoiceResponse()
    with svc.sessions() as s:
        attempt = s.get(Attempt, attempt_id)
        lead = s.get(Lead, attempt.lead_id) if attempt else None
        if lead is None:
            response.hangup()
            return str(response)
        flow = conversation.flow_for(svc, lead)
        number = spoken_number(svc.settings.caller_id)
        if flow.voicemail is not None:
            fields = conversation.lead_fields(lead)
            text = flow.voicemail.render(
                lead.language, flow.language, {"lead": fields, "callback_number": number}
            )
        else:
            text = FALLBACK_VOICEMAIL.format(first=lead.first_name, number=number)
        record(s, lead.id, "voicemail_left", text=text)
        s.commit()
    gather = response.gather(
        input="dtmf speech",
        action=f"{svc.settings.base_url}/twilio/voice/voicemail/{attempt_id}/heard",
        method="POST",
        timeout=2,
        speech_timeout="auto",
    )
    gather.say(text, voice=flow.voice_for(lead.language))
    response.hangup()
    return str(response)


def heard(svc: Services, attempt_id: str, call_sid: str) -> str:
    """Someone spoke or pressed a key over the voicemail: a person after all. Never hang up on them."""
    from bot.channels.resume import resume_voice

    response = VoiceResponse()
    with svc.sessions() as s:
        lead = conversation.lead_on_call(s, attempt_id)
        if lead is None:
            response.hangup()
            return str(response)
        record(s, lead.id, "amd_corrected", sid=call_sid, note="a person spoke during the voicemail")
        cadence.stop(s, lead.id, "answered: a person, not a machine")
        lead.status, lead.status_reason = LeadStatus.IN_CONVERSATION.value, None
        conv, prompts = resume_voice(svc, s, lead, call_sid, MISTAKEN)
        voice_render.render(
            prompts, action_url=voice_render.turn_url(svc.settings.base_url, conv.id, conv.state),
            response=response
        )
        s.commit()
    return str(response)
