"""Glue between channels and the pure flow engine: load/save state, render, and apply outcomes."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from bot import compliance
from bot.flows import engine
from bot.flows import sms as sms_render
from bot.flows import voice as voice_render
from bot.flows.errors import FlowsError
from bot.flows.model import ActionKind, Flow
from bot.flows.registry import FlowRegistry
from bot.leads import parse_phone, e164
from bot.models import Attempt, Conversation, FlowVersion, Lead, LeadStatus, utcnow
from bot.services import Services
from bot.timeline import EventType, record

log = logging.getLogger(__name__)

UNKNOWN_CALLER = ("Thanks for calling. This number returns calls about service requests. Please send us a "
                  "request on our website and we will call you right back. Goodbye.")
VOICEMAIL = ("Hi {first}, this is the team you just contacted. We're returning your request and will try "
             "you again shortly. Talk soon!")
UNAVAILABLE = "Sorry, something went wrong on our side. A specialist will call you back shortly. Goodbye."
SMS_TRANSFER = {"en": "Great news, {first}! A specialist will call you in the next few minutes.",
                "es": "¡Excelente, {first}! Un especialista le llamará en los próximos minutos."}
RESUBSCRIBE_WORDS = {"start", "unstop", "yes"}
NURTURE_FIRST_FOLLOW_UP = timedelta(days=3)


def make_registry(svc: Services) -> FlowRegistry:
    """A flow registry that stores every valid version in the DB, so pinned versions survive restarts."""

    def on_new_version(flow_id: str, version: str, source: str, path: str) -> None:
        with svc.sessions() as s:
            if s.get(FlowVersion, version) is None:
                s.add(FlowVersion(hash=version, flow_id=flow_id, source=source, path=str(path)))
                try:
                    s.commit()
                except IntegrityError:  # another process stored the same version first
                    s.rollback()

    def source_loader(version: str) -> str | None:
        with svc.sessions() as s:
            row = s.get(FlowVersion, version)
            return row.source if row else None

    return FlowRegistry(svc.settings.flows_dir, on_new_version=on_new_version, source_loader=source_loader)


def lead_fields(lead: Lead) -> dict[str, Any]:
    """What templates may use as {{ lead.* }}."""
    return {"name": lead.name, "first_name": lead.first_name, "phone": lead.phone, "email": lead.email,
            "service": lead.service, "source": lead.source, "language": lead.language, "message": lead.message}


def flow_for(svc: Services, lead: Lead) -> Flow:
    """The lead's flow, newest valid version.

    Call it before the caller's session writes anything: a new version is stored through a
    separate session, which on SQLite would wait for our own open write transaction.
    """
    return svc.flows.current(lead.flow_id or svc.flows.choose(service=lead.service, source=lead.source))


def _begin(svc: Services, s: Session, lead: Lead, flow: Flow, channel: str,  # noqa: ANN202
           call_sid: str | None = None):
    """Start the flow for this lead and persist the conversation."""
    state, prompts, outcome = engine.start(flow, lead_fields(lead), channel)
    conv = Conversation(lead_id=lead.id, channel=channel, phone=lead.phone, call_sid=call_sid,
                        flow_id=flow.id, flow_version=flow.version, state=state)
    lead.flow_id = flow.id
    s.add(conv)
    s.flush()
    record(s, lead.id, "conversation_started", channel=channel, flow=flow.id, version=flow.version[:12])
    return conv, prompts, outcome


def _turn(svc: Services, s: Session, conv: Conversation, event: engine.Event):  # noqa: ANN202
    """Step the engine on the conversation's pinned flow version and save the new state."""
    flow = svc.flows.get(conv.flow_id, conv.flow_version)
    before = conv.state
    state, prompts, outcome = engine.step(flow, before, event, region=svc.settings.default_region)
    conv.state = state
    for step_id, value in state["answers"].items():
        if step_id not in before["answers"]:
            record(s, conv.lead_id, EventType.ANSWER, step=step_id, value=_jsonable(value),
                   raw=state["raw"].get(step_id), channel=conv.channel)
    return prompts, outcome


def _jsonable(value: Any) -> Any:
    """Answers as JSON (dates and ranges become strings)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


# ---- voice ----

def _action_url(svc: Services, conv: Conversation) -> str:
    return f"{svc.settings.base_url}/twilio/voice/turn/{conv.id}"


def voice_answer(svc: Services, attempt_id: str, call_sid: str, answered_by: str) -> str:
    """Our outbound call was answered: start the flow, or leave a short voicemail."""
    response = VoiceResponse()
    with svc.sessions() as s:
        attempt = s.get(Attempt, attempt_id)
        lead = s.get(Lead, attempt.lead_id) if attempt else None
        if lead is None or lead.status == LeadStatus.OPTED_OUT.value:
            response.hangup()
            return str(response)
        if answered_by.startswith(("machine", "fax")):
            record(s, lead.id, EventType.MACHINE, answered_by=answered_by, sid=call_sid)
            lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"voicemail ({answered_by})"
            response.say(VOICEMAIL.format(first=lead.first_name))
            response.hangup()
            s.commit()
            return str(response)
        flow = flow_for(svc, lead)
        record(s, lead.id, EventType.ANSWERED, sid=call_sid, answered_by=answered_by or "unknown")
        conv, prompts, outcome = _begin(svc, s, lead, flow, "voice", call_sid)
        lead.status = LeadStatus.IN_CONVERSATION.value
        voice_render.render(prompts, outcome, action_url=_action_url(svc, conv), response=response)
        s.commit()
    return str(response)


def voice_turn(svc: Services, conv_id: str, speech: str | None, digits: str | None) -> str:
    """One Gather result through the engine; returns the next TwiML."""
    response = VoiceResponse()
    with svc.sessions() as s:
        conv = s.get(Conversation, conv_id)
        if conv is None or not conv.open:
            response.hangup()
            return str(response)
        event = voice_render.event_from_gather({"SpeechResult": speech or "", "Digits": digits or ""})
        try:
            prompts, outcome = _turn(svc, s, conv, event)
        except FlowsError as exc:
            log.error("conversation %s failed: %s", conv_id, exc)
            record(s, conv.lead_id, EventType.FAILED, reason=str(exc)[:500])
            response.say(UNAVAILABLE)
            response.hangup()
            s.commit()
            return str(response)
        voice_render.render(prompts, outcome, action_url=_action_url(svc, conv), response=response)
        if outcome is not None:
            lead = s.get(Lead, conv.lead_id)
            apply_outcome(svc, s, lead, conv, outcome, response=response)
        s.commit()
    return str(response)


def voice_inbound(svc: Services, from_phone: str, call_sid: str) -> str:
    """A call to our number: a prospect with an unfinished lead picks up where we left off."""
    response = VoiceResponse()
    phone = _normalize(svc, from_phone)
    with svc.sessions() as s:
        lead = phone and s.scalar(select(Lead).where(Lead.phone == phone).order_by(Lead.created_at.desc()).limit(1))
        if not lead or lead.status not in _RESUMABLE or s.get(compliance.OptOut, phone) is not None:
            response.say(UNKNOWN_CALLER)
            response.hangup()
            return str(response)
        flow = flow_for(svc, lead)
        _close_open(s, lead.id)
        record(s, lead.id, "inbound_call", sid=call_sid)
        conv, prompts, outcome = _begin(svc, s, lead, flow, "voice", call_sid)
        lead.status = LeadStatus.IN_CONVERSATION.value
        voice_render.render(prompts, outcome, action_url=_action_url(svc, conv), response=response)
        s.commit()
    return str(response)


_RESUMABLE = {LeadStatus.CONTACTING.value, LeadStatus.NO_ANSWER.value, LeadStatus.IN_CONVERSATION.value,
              LeadStatus.SCHEDULED.value, LeadStatus.NURTURING.value, LeadStatus.QUEUED.value,
              LeadStatus.RECEIVED.value}


def _close_open(s: Session, lead_id: str) -> None:
    """Close a lead's unfinished conversations (a new one replaces them)."""
    s.execute(update(Conversation).where(Conversation.lead_id == lead_id, Conversation.open.is_(True))
              .values(open=False, outcome="abandoned"))


def _normalize(svc: Services, phone: str) -> str | None:
    """E.164 for a sender, or None when it is not a phone number."""
    try:
        return e164(parse_phone(phone, svc.settings.default_region))
    except ValueError:
        return None


# ---- sms and email ----

def start_sms(svc: Services, s: Session, lead: Lead) -> str:
    """Open the SMS conversation; returns the first text (greeting, first question, how to opt out)."""
    flow = flow_for(svc, lead)
    _close_open(s, lead.id)
    conv, prompts, outcome = _begin(svc, s, lead, flow, "sms")
    if outcome is not None:
        apply_outcome(svc, s, lead, conv, outcome)
    return sms_render.render(prompts, outcome)


def sms_inbound(svc: Services, from_phone: str, body: str) -> str | None:
    """Route an inbound text: opt-out words first, then reps, then the prospect's open conversation."""
    phone = _normalize(svc, from_phone)
    if phone is None:
        return None
    with svc.sessions() as s:
        if compliance.is_opt_out(body):
            _opt_out(s, phone, "sms keyword")
            s.commit()
            return None  # the carrier/Twilio sends the opt-out confirmation; a reply would be blocked
        if body.strip().lower() in RESUBSCRIBE_WORDS and s.get(compliance.OptOut, phone) is not None:
            s.delete(s.get(compliance.OptOut, phone))
            s.commit()
            return "You're subscribed again. Reply STOP at any time to opt out."
        reply = _rep_reply(svc, s, phone, body)
        if reply is not None:
            s.commit()
            return reply
        conv = s.scalar(select(Conversation).where(Conversation.phone == phone, Conversation.channel == "sms",
                                                   Conversation.open.is_(True))
                        .order_by(Conversation.created_at.desc()).limit(1))
        if conv is None:
            return _no_conversation(svc, s, phone, body)
        record(s, conv.lead_id, EventType.REPLY, body=body[:500])
        lead = s.get(Lead, conv.lead_id)
        if lead.status == LeadStatus.CONTACTING.value:
            lead.status = LeadStatus.IN_CONVERSATION.value
        try:
            prompts, outcome = _turn(svc, s, conv, sms_render.event_from_sms(body))
        except FlowsError as exc:
            log.error("conversation %s failed: %s", conv.id, exc)
            record(s, conv.lead_id, EventType.FAILED, reason=str(exc)[:500])
            s.commit()
            return "Sorry, something went wrong on our side. A specialist will get back to you shortly."
        if outcome is not None and outcome.kind == ActionKind.WARM_TRANSFER:
            # "Please hold" makes no sense in a text: a specialist calls them instead.
            line = SMS_TRANSFER.get(outcome.language, SMS_TRANSFER["en"]).format(first=lead.first_name)
            outcome = dataclasses.replace(outcome, say=line)
        text = sms_render.render(prompts, outcome)
        if outcome is not None:
            apply_outcome(svc, s, lead, conv, outcome)
        s.commit()
    return text


def _rep_reply(svc: Services, s: Session, phone: str, body: str) -> str | None:
    """A salesperson's reply (an acknowledgement) is handled by the handoff package."""
    from handoff.service import rep_reply

    return rep_reply(svc, s, phone, body)


def _no_conversation(svc: Services, s: Session, phone: str, body: str) -> str | None:
    """A text from someone with no open conversation: a nurtured lead saying they're ready restarts it."""
    lead = s.scalar(select(Lead).where(Lead.phone == phone).order_by(Lead.created_at.desc()).limit(1))
    if lead is None or lead.status not in _RESUMABLE:
        return None
    flow = flow_for(svc, lead)
    record(s, lead.id, EventType.REPLY, body=body[:500], restarted=True)
    conv, prompts, outcome = _begin(svc, s, lead, flow, "sms")
    lead.status = LeadStatus.IN_CONVERSATION.value
    s.commit()
    return sms_render.render(prompts, outcome)


def start_email(svc: Services, s: Session, lead: Lead) -> str:
    """Email leads get the greeting and the questions, and can reply or call us; returns the Message-ID."""
    from handoff.mail import send_mail

    flow = flow_for(svc, lead)
    lead.flow_id = flow.id
    _state, prompts, _ = engine.start(flow, lead_fields(lead), "sms")
    questions = [engine.prompt_for(flow, step_id, lead_fields(lead), lead.language).text for step_id in flow.steps]
    msg = EmailMessage()
    msg["From"], msg["To"] = svc.settings.mail_from, lead.email
    msg["Subject"] = f"Your request{' about ' + lead.service if lead.service else ''}"
    msg["X-Leadbot-Lead-Id"] = lead.id
    lines = [prompts[0].text, "", "To help us help you faster, reply with a line for each:"]
    lines += [f"{n}. {q}" for n, q in enumerate(questions, 1)]
    lines += ["", f"Or call or text us at {svc.settings.caller_id}."]
    msg.set_content("\n".join(lines))
    receipt = send_mail(svc.settings, msg, svc.sessions)
    record(s, lead.id, EventType.EMAIL_SENT, to=lead.email, transport=str(receipt.transport))
    return receipt.message_id or msg.get("Message-ID", "") or f"email-{lead.id}"


def _opt_out(s: Session, phone: str, source: str) -> None:
    """Stop everything for this number: record it, close conversations, and mark its leads."""
    compliance.opt_out(s, phone, source)
    for lead in s.scalars(select(Lead).where(Lead.phone == phone, Lead.status.notin_(
            [LeadStatus.HANDED_OFF.value, LeadStatus.OPTED_OUT.value]))):
        _close_open(s, lead.id)
        lead.status, lead.status_reason = LeadStatus.OPTED_OUT.value, f"opted out ({source})"
        record(s, lead.id, EventType.OPTED_OUT, source=source)


# ---- outcomes ----

def apply_outcome(svc: Services, s: Session, lead: Lead, conv: Conversation, outcome: engine.Outcome,
                  response: VoiceResponse | None = None) -> None:
    """Record how the conversation ended and start what follows (handoff, nurture, close, opt-out)."""
    conv.open, conv.outcome = False, outcome.id
    lead.answers = {**(lead.answers or {}), **_jsonable(outcome.answers)}
    record(s, lead.id, EventType.OUTCOME, outcome=outcome.id, action=outcome.action, reason=outcome.reason,
           channel=conv.channel)
    kind = outcome.kind
    if kind == ActionKind.OPT_OUT:
        _opt_out(s, lead.phone, f"{conv.channel} flow")
    elif kind == ActionKind.CLOSE:
        lead.status, lead.status_reason = LeadStatus.DISQUALIFIED.value, outcome.reason or outcome.id
        record(s, lead.id, EventType.DISQUALIFIED, outcome=outcome.id, reason=outcome.reason)
    elif kind == ActionKind.NURTURE:
        follow_up = utcnow() + NURTURE_FIRST_FOLLOW_UP
        lead.status, lead.status_reason = LeadStatus.NURTURING.value, f"nurture sequence {outcome.sequence}"
        record(s, lead.id, EventType.NURTURE, sequence=outcome.sequence,
               waiting_for=f"first follow-up of '{outcome.sequence}'", next_follow_up=follow_up.isoformat() + "Z")
    else:
        from handoff.service import begin_sms_handoff, begin_warm_transfer

        lead.status = LeadStatus.QUALIFIED.value
        record(s, lead.id, EventType.QUALIFIED, outcome=outcome.id, action=outcome.action)
        if kind == ActionKind.WARM_TRANSFER and response is not None and conv.call_sid:
            begin_warm_transfer(svc, s, lead, outcome, conv.call_sid, response)
        else:
            begin_sms_handoff(svc, s, lead, outcome)
