"""Picking a conversation back up where it stopped: after a cut-off call, a voicemail a person spoke
over, or a prospect calling us back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import conversation, quiet
from bot.flows import engine, sms_render
from bot.flows.engine import Prompt, PromptKind
from bot.runtime.services import Services
from bot.store.tables import Conversation, Lead, LeadStatus
from bot.store.timeline import record

RESUMABLE_OUTCOMES = ("cut_off", "voicemail")
CUT_OFF = {
    "en": "Hi {first}, we got cut off earlier. Let's pick up where we left off.",
    "es": "Hola {first}, se cortó la llamada. Sigamos donde lo dejamos.",
}
CUT_OFF_SMS = {
    "en": "Hi {first}, we got cut off on the phone. Let's pick up where we left off by text.",
    "es": "Hola {first}, se cortó la llamada. Sigamos por mensaje donde lo dejamos.",
}


def stopped(s: Session, lead_id: str) -> Conversation | None:
    """The lead's latest unfinished conversation: open, cut off, or left at a voicemail."""
    conv = s.scalar(
        select(Conversation)
        .where(Conversation.lead_id == lead_id)
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    if conv is None or (conv.state or {}).get("done"):
        return None
    return conv if conv.open or conv.outcome in RESUMABLE_OUTCOMES else None


def _continue(
    svc: Services, s: Session, lead: Lead, old: Conversation, channel: str, call_sid: str | None, preface: str
) -> tuple[Conversation, list[Prompt]]:
    """A new conversation on `channel` with the old one's state (its pinned flow version), asking its step."""
    flow = svc.flows.get(old.flow_id, old.flow_version)
    old.open = False
    old.outcome = old.outcome if old.outcome in RESUMABLE_OUTCOMES else "resumed"
    state: dict[str, Any] = {**old.state, "channel": channel, "retries": 0}
    conv = Conversation(
        lead_id=lead.id,
        channel=channel,
        phone=lead.phone,
        call_sid=call_sid,
        flow_id=old.flow_id,
        flow_version=old.flow_version,
        state=state,
    )
    s.add(conv)
    s.flush()
    step = state["step"]
    record(s, lead.id, "conversation_resumed", channel=channel, step=step, was=old.id)
    lang = state.get("language", "en")
    question = engine.prompt_for(flow, step, conversation.lead_fields(lead), lang, state.get("answers"))
    voice = flow.voice_for(lang)
    return conv, [Prompt(preface, PromptKind.GREETING, lang, voice), question]


def resume_voice(
    svc: Services, s: Session, lead: Lead, call_sid: str, preface: str | None = None
) -> tuple[Conversation, list[Prompt]]:
    """On a call: continue the stopped conversation (saying so), or start the flow from the top."""
    old = stopped(s, lead.id)
    if old is not None:
        lang = (old.state or {}).get("language", "en")
        said = preface or CUT_OFF.get(lang, CUT_OFF["en"]).format(first=lead.first_name)
        return _continue(svc, s, lead, old, "voice", call_sid, said)
    flow = conversation.flow_for(svc, lead)
    conv, prompts, _ = conversation.begin(svc, s, lead, flow, "voice", call_sid)
    if preface:
        first = prompts[0]
        prompts = [Prompt(preface, PromptKind.GREETING, first.language, first.voice), *prompts]
    return conv, prompts


def resume_sms(svc: Services, s: Session, lead: Lead) -> str | None:
    """A text to a lead whose call was cut off: continue by text; None when nothing was cut off."""
    old = stopped(s, lead.id)
    if old is None or old.outcome != "cut_off":
        return None
    lang = (old.state or {}).get("language", "en")
    preface = CUT_OFF_SMS.get(lang, CUT_OFF_SMS["en"]).format(first=lead.first_name)
    conversation.close_open(s, lead.id)
    conv, prompts = _continue(svc, s, lead, old, "sms", None, preface)
    quiet.expect_reply(svc, s, lead, conv)
    lead.status = LeadStatus.CONTACTING.value if lead.status == LeadStatus.NO_ANSWER.value else lead.status
    return sms_render.render(prompts)
