"""Glue between channels and the pure flow engine: load/save state, render, and apply outcomes."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from bot import compliance
from bot.models import Attempt, Conversation, FlowVersion, Lead, LeadStatus
from bot.services import Services
from bot.timeline import EventType, record

log = logging.getLogger(__name__)

OPT_OUT_REPLY = "You're unsubscribed and won't hear from us again. Reply START to resubscribe."
UNKNOWN_CALLER = ("Thanks for calling. This line is used to return calls about service requests. "
                  "Please submit a request on our website and we will call you right back. Goodbye.")


def make_registry(svc: Services):  # noqa: ANN201
    """A flow registry that stores every valid version in the DB, so pinned versions survive restarts."""
    from bot.flows.registry import FlowRegistry

    def on_new_version(flow_id: str, version: str, source: str, path: str) -> None:
        with svc.sessions() as s:
            if s.get(FlowVersion, version) is None:
                s.add(FlowVersion(hash=version, flow_id=flow_id, source=source, path=str(path)))
                s.commit()

    def source_loader(version: str) -> str | None:
        with svc.sessions() as s:
            row = s.get(FlowVersion, version)
            return row.source if row else None

    return FlowRegistry(svc.settings.flows_dir, on_new_version=on_new_version, source_loader=source_loader)


def lead_fields(lead: Lead) -> dict[str, Any]:
    """What templates may use as {{ lead.* }}."""
    return {"name": lead.name, "first_name": lead.first_name, "phone": lead.phone, "email": lead.email,
            "service": lead.service, "source": lead.source, "language": lead.language, "message": lead.message}


def _begin(svc: Services, s: Session, lead: Lead, channel: str, call_sid: str | None = None):  # noqa: ANN202
    """Pick the flow for this lead, start it, and persist the conversation."""
    from bot.flows import engine

    flow_id = lead.flow_id or svc.flows.choose(service=lead.service, source=lead.source)
    flow = svc.flows.current(flow_id)
    state, prompts, outcome = engine.start(flow, lead_fields(lead), channel)
    conv = Conversation(lead_id=lead.id, channel=channel, phone=lead.phone, call_sid=call_sid,
                        flow_id=flow.id, flow_version=flow.version, state=state)
    lead.flow_id = flow.id
    lead.status = LeadStatus.IN_CONVERSATION.value
    s.add(conv)
    s.flush()
    return conv, flow, prompts, outcome


def start_sms(svc: Services, s: Session, lead: Lead) -> str:
    """Open the SMS conversation and return the first text (greeting + first question)."""
    from bot.flows.sms import render_sms

    conv, flow, prompts, outcome = _begin(svc, s, lead, "sms")
    if outcome is not None:
        apply_outcome(svc, s, lead, conv, outcome)
    lead.status = LeadStatus.CONTACTING.value  # until the prospect replies
    return render_sms(prompts, outcome)
