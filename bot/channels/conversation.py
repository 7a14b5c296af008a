"""The conversation core shared by every channel: flow choice, state, answers, outcomes and opt-out."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from bot.compliance import gate as compliance
from bot.flows import engine
from bot.flows.model import ActionKind, Flow
from bot.runtime import crm
from bot.runtime.services import Services
from bot.store.leads import e164, insert_event, parse_phone
from bot.store.prepared import RawSession
from bot.store.tables import Attempt, Conversation, Lead, LeadStatus, utcnow
from bot.store.timeline import EventType, record

log = logging.getLogger(__name__)

CONVERSATIONS = cast(Table, Conversation.__table__)
# Built once: the voice turn is latency the prospect hears as silence.
OPEN_CONVERSATION = select(
    CONVERSATIONS.c.id, CONVERSATIONS.c.lead_id, CONVERSATIONS.c.channel, CONVERSATIONS.c.flow_id,
    CONVERSATIONS.c.flow_version, CONVERSATIONS.c.state,
).where(CONVERSATIONS.c.id == bindparam("id"), CONVERSATIONS.c.open.is_(True))
SAVE_STATE = (update(CONVERSATIONS).where(CONVERSATIONS.c.id == bindparam("cid"))
              .values(state=bindparam("state"), updated_at=bindparam("at")))

NURTURE_FIRST_FOLLOW_UP = timedelta(days=3)


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


def begin(svc: Services, s: Session, lead: Lead, flow: Flow, channel: str,  # noqa: ANN202
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


def turn(svc: Services, s: Session, conv: Any, event: engine.Event):  # noqa: ANN202
    """Step the engine on the conversation's pinned flow version and save the new state in `s`.

    `conv` is a Conversation or a row from OPEN_CONVERSATION.
    """
    state, prompts, outcome = advance(svc, conv, event)
    save(s.connection(), conv, state)
    return prompts, outcome


def advance(svc: Services, conv: Any, event: engine.Event):  # noqa: ANN202
    """The engine's step on the conversation's pinned flow version: (new state, prompts, outcome). No I/O."""
    flow = svc.flows.get(conv.flow_id, conv.flow_version)
    return engine.step(flow, conv.state, event, region=svc.settings.default_region)


def save(conn: Connection | RawSession, conv: Any, state: dict[str, Any]) -> None:
    """Store the new state and an `answer` event for each new answer (uncommitted).

    Core statements: this runs on every answer while the prospect waits, and an ORM flush cost
    more than the SQL itself.
    """
    before = conv.state["answers"]
    conn.execute(SAVE_STATE, {"cid": conv.id, "state": state, "at": utcnow()})
    for step_id, value in state["answers"].items():
        if step_id not in before:
            insert_event(conn, conv.lead_id, EventType.ANSWER, step=step_id, value=jsonable(value),
                         raw=state["raw"].get(step_id), channel=conv.channel)


def jsonable(value: Any) -> Any:
    """Answers as JSON (dates and ranges become strings)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


RESUMABLE = {LeadStatus.CONTACTING.value, LeadStatus.NO_ANSWER.value, LeadStatus.IN_CONVERSATION.value,
              LeadStatus.SCHEDULED.value, LeadStatus.NURTURING.value, LeadStatus.QUEUED.value,
              LeadStatus.RECEIVED.value}


def close_open(s: Session, lead_id: str) -> None:
    """Close a lead's unfinished conversations (a new one replaces them)."""
    s.execute(update(Conversation).where(Conversation.lead_id == lead_id, Conversation.open.is_(True))
              .values(open=False, outcome="abandoned"))


def lead_on_call(s: Session, attempt_id: str) -> Lead | None:
    """The lead a call of ours reached; None when it is gone or opted out (the call is hung up)."""
    attempt = s.get(Attempt, attempt_id)
    lead = s.get(Lead, attempt.lead_id) if attempt else None
    return None if lead is None or lead.status == LeadStatus.OPTED_OUT.value else lead


def normalize(svc: Services, phone: str) -> str | None:
    """E.164 for a sender, or None when it is not a phone number."""
    try:
        return e164(parse_phone(phone, svc.settings.default_region))
    except ValueError:
        return None


def opt_out(svc: Services, s: Session, phone: str, source: str) -> None:
    """Stop everything for this number: record it, close conversations, cancel handoffs, mark its leads."""
    from bot.channels.touches import block_all
    from handoff.service import cancel_handoffs
    from handoff.withdrawn import tell_reps

    compliance.opt_out(s, phone, source)
    tell_reps(svc, s, phone)  # a rep holding one of its leads would still call: they hear of it
    for lead in s.scalars(select(Lead).where(Lead.phone == phone, Lead.status.notin_(
            [LeadStatus.HANDED_OFF.value, LeadStatus.OPTED_OUT.value]))):
        close_open(s, lead.id)
        block_all(s, lead.id, "blocked: opted out")
        cancel_handoffs(svc, s, lead.id, f"opted out ({source})", blocked="blocked: opted out")
        lead.status, lead.status_reason = LeadStatus.OPTED_OUT.value, f"opted out ({source})"
        record(s, lead.id, EventType.OPTED_OUT, source=source)
        crm.emit(svc, s, lead.id, "lead.opted_out")


# ---- outcomes ----

def apply_outcome(svc: Services, s: Session, lead: Lead, conv: Conversation, outcome: engine.Outcome,
                  response: VoiceResponse | None = None) -> None:
    """Record how the conversation ended and start what follows (handoff, nurture, close, opt-out)."""
    conv.open, conv.outcome = False, outcome.id
    lead.answers = {**(lead.answers or {}), **jsonable(outcome.answers)}
    record(s, lead.id, EventType.OUTCOME, outcome=outcome.id, action=outcome.action, reason=outcome.reason,
           channel=conv.channel)
    kind = outcome.kind
    if kind == ActionKind.OPT_OUT:
        opt_out(svc, s, lead.phone, f"{conv.channel} flow")
    elif kind == ActionKind.CLOSE:
        lead.status, lead.status_reason = LeadStatus.DISQUALIFIED.value, outcome.reason or outcome.id
        record(s, lead.id, EventType.DISQUALIFIED, outcome=outcome.id, reason=outcome.reason)
        crm.emit(svc, s, lead.id, "lead.disqualified")
    elif kind == ActionKind.NURTURE:
        from bot.channels import nurture

        follow_up = nurture.enter(svc, s, lead, outcome.sequence) or utcnow() + NURTURE_FIRST_FOLLOW_UP
        lead.status, lead.status_reason = LeadStatus.NURTURING.value, f"nurture sequence {outcome.sequence}"
        record(s, lead.id, EventType.NURTURE, sequence=outcome.sequence,
               waiting_for=f"first follow-up of '{outcome.sequence}'", next_follow_up=follow_up.isoformat() + "Z")
        crm.emit(svc, s, lead.id, "lead.nurturing")
    else:
        from bot.channels.touches import cancel
        from handoff.service import begin_sms_handoff, begin_warm_transfer

        lead.status = LeadStatus.QUALIFIED.value
        cancel(s, lead.id, "qualified: handed to sales")
        record(s, lead.id, EventType.QUALIFIED, outcome=outcome.id, action=outcome.action)
        crm.emit(svc, s, lead.id, "lead.qualified")
        if kind == ActionKind.WARM_TRANSFER and response is not None and conv.call_sid:
            begin_warm_transfer(svc, s, lead, outcome, conv.call_sid, response)
        else:
            begin_sms_handoff(svc, s, lead, outcome)
