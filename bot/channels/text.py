"""The SMS and email channels: the first message, and every inbound text routed by its sender."""

from __future__ import annotations

import dataclasses
import logging
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import conversation, quiet, replies
from bot.channels.conversation import RESUMABLE
from bot.compliance import optout
from bot.flows import engine, sms_render
from bot.flows.errors import FlowsError
from bot.flows.model import ActionKind
from bot.runtime.services import Services
from bot.store.tables import Conversation, Lead, LeadStatus
from bot.store.timeline import EventType, record

log = logging.getLogger(__name__)

SMS_TRANSFER = {"en": "Great news, {first}! A specialist will call you in the next few minutes.",
                "es": "¡Excelente, {first}! Un especialista le llamará en los próximos minutos."}
RESUBSCRIBE_WORDS = {"start", "unstop", "yes"}


def start_sms(svc: Services, s: Session, lead: Lead) -> str:
    """Open the SMS conversation; returns the first text (greeting, first question, how to opt out)."""
    flow = conversation.flow_for(svc, lead)
    conversation.close_open(s, lead.id)
    conv, prompts, outcome = conversation.begin(svc, s, lead, flow, "sms")
    if outcome is not None:
        conversation.apply_outcome(svc, s, lead, conv, outcome)
    quiet.expect_reply(svc, s, lead, conv)
    return sms_render.render(prompts, outcome)


def sms_inbound(svc: Services, from_phone: str, body: str) -> str | None:
    """Route an inbound text: opt-out words first, then reps, then the prospect's open conversation."""
    phone = conversation.normalize(svc, from_phone)
    if phone is None:
        return None
    with svc.sessions() as s:
        kind = optout.keyword(body)
        if kind == "stop":
            conversation.opt_out(svc, s, phone, "sms keyword")
            s.commit()
            return None  # the carrier/Twilio sends the opt-out confirmation; a reply would be blocked
        if kind == "help":
            return optout.help_text(svc.settings.business_name)
        if (kind == "start" or body.strip().lower() in RESUBSCRIBE_WORDS) and optout.opt_in(s, phone):
            for lead_id in s.scalars(select(Lead.id).where(Lead.phone == phone)):
                record(s, lead_id, EventType.OPTED_IN, source="sms keyword")
            s.commit()
            return "You're subscribed again. Reply STOP at any time to opt out."
        reply = _rep_reply(svc, s, phone, body)
        if reply is not None:
            s.commit()
            return reply
        reply = replies.on_text(svc, s, phone, body)  # stops the cadence and nurture; CALL calls back
        if reply is not None:
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
            prompts, outcome = conversation.turn(svc, s, conv, sms_render.event_from_sms(body))
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
            conversation.apply_outcome(svc, s, lead, conv, outcome)
        quiet.expect_reply(svc, s, lead, conv)
        s.commit()
    return text


def _rep_reply(svc: Services, s: Session, phone: str, body: str) -> str | None:
    """A salesperson's reply (an acknowledgement) is handled by the handoff package."""
    from handoff.service import rep_reply

    return rep_reply(svc, s, phone, body)


def _no_conversation(svc: Services, s: Session, phone: str, body: str) -> str | None:
    """A text from someone with no open conversation: a nurtured lead saying they're ready restarts it."""
    lead = s.scalar(select(Lead).where(Lead.phone == phone).order_by(Lead.created_at.desc()).limit(1))
    if lead is None or lead.status not in RESUMABLE:
        return None
    flow = conversation.flow_for(svc, lead)
    record(s, lead.id, EventType.REPLY, body=body[:500], restarted=True)
    conv, prompts, outcome = conversation.begin(svc, s, lead, flow, "sms")
    lead.status = LeadStatus.IN_CONVERSATION.value
    quiet.expect_reply(svc, s, lead, conv)
    s.commit()
    return sms_render.render(prompts, outcome)


def start_email(svc: Services, s: Session, lead: Lead) -> str:
    """Email leads get the greeting and the questions, and can reply or call us; returns the Message-ID."""
    from handoff.mail import send_mail

    flow = conversation.flow_for(svc, lead)
    lead.flow_id = flow.id
    _state, prompts, _ = engine.start(flow, conversation.lead_fields(lead), "sms")
    fields = conversation.lead_fields(lead)
    questions = [engine.prompt_for(flow, step_id, fields, lead.language).text for step_id in flow.steps]
    msg = EmailMessage()
    msg["From"], msg["To"] = svc.settings.mail_from, lead.email
    # One line: a line break from a lead's field would be a header injection (EmailMessage refuses it).
    service = " ".join((lead.service or "").split())
    msg["Subject"] = f"Your request{' about ' + service if service else ''}"
    msg["X-Leadbot-Lead-Id"] = lead.id
    lines = [prompts[0].text, "", "To help us help you faster, reply with a line for each:"]
    lines += [f"{n}. {q}" for n, q in enumerate(questions, 1)]
    lines += ["", f"Or call or text us at {svc.settings.caller_id}."]
    msg.set_content("\n".join(lines))
    receipt = send_mail(svc.settings, msg, svc.sessions)
    quiet.expect_email_reply(svc, s, lead)
    return receipt.message_id or msg.get("Message-ID", "") or f"email-{lead.id}"
