"""A text conversation the prospect stopped answering: nudge, then end it with a person knowing.

Without this, a lead who chose SMS and never answered the first question (or stopped halfway) stayed
`in_conversation` for ever: no call, no text, nobody told. Each text that asks a question plans a
nudge (`cadence.yaml`, `quiet:`): "Still there, Ada?" and the question again, through the gate like
every touch. A reply cancels it (it is a chase touch), and the next question plans a new one. After
the last nudge the conversation is closed as cut off, so a later reply or call resumes it at its step:
a lead who chose texts or email reaches the end of its cadence (the email last, the managers told);
a lead who chose calls keeps whatever its call cadence still has planned.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.channels import conversation, touches
from bot.channels.cadence import cadence_for, cut_off, finished
from bot.flows import engine, sms_render
from bot.flows.engine import Prompt, PromptKind
from bot.runtime.services import Services
from bot.store.tables import Conversation, Lead, LeadStatus, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Touch, TouchStatus

NUDGE, GONE_QUIET, EMAIL_WAIT = "nudge", "quiet_end", "email_wait"
KINDS = (NUDGE, GONE_QUIET)
STILL_THERE = {"en": "Still there, {first}?", "es": "¿Sigue ahí, {first}?"}


def expect_reply(svc: Services, s: Session, lead: Lead, conv: Conversation) -> None:
    """A text that asks a question went (or is going) out: plan the first nudge for its silence."""
    s.flush()
    s.refresh(conv, ["state", "open"])  # a turn saves the state with a Core statement, past the ORM
    if not conv.open or conv.channel != "sms" or (conv.state or {}).get("done"):
        return
    _plan(svc, s, lead, conv, 1)


def _plan(svc: Services, s: Session, lead: Lead, conv: Conversation, n: int) -> None:
    quiet = cadence_for(svc, lead).quiet
    kind = NUDGE if n <= quiet.nudges else GONE_QUIET
    turn = (conv.state or {}).get("turns", 0)
    touches.plan(svc, s, lead.id, f"quiet:{conv.id}:{turn}:{n}", kind, "sms", utcnow() + quiet.after,
                 step=str(n))


def still_waiting(s: Session, touch: Touch) -> bool:
    """True while the watched conversation is open on the same question (no reply since it was planned)."""
    return _waiting(s, touch) is not None


def _waiting(s: Session, touch: Touch) -> Conversation | None:
    """The conversation the touch watches, while it still waits on the same question."""
    _, conv_id, turn, _n = touch.key.split(":")
    conv = s.get(Conversation, conv_id)
    if conv is None or not conv.open or (conv.state or {}).get("done"):
        return None
    return conv if str((conv.state or {}).get("turns", 0)) == turn else None


def nudge(svc: Services, s: Session, lead: Lead, touch: Touch) -> str | None:
    """The nudge's text: "Still there?" and the question again; None when the conversation moved on."""
    conv = _waiting(s, touch)
    if conv is None:
        return None
    state = conv.state or {}
    flow = svc.flows.get(conv.flow_id, conv.flow_version)
    lang = state.get("language", "en")
    fields = {"lead": conversation.lead_fields(lead)}
    question = engine.prompt_for(flow, state["step"], fields["lead"], lang, state.get("answers"))
    quiet = cadence_for(svc, lead).quiet
    hello = (quiet.say.render(lang, "en", fields) if quiet.say
             else STILL_THERE.get(lang, STILL_THERE["en"]).format(first=lead.first_name))
    return sms_render.render([Prompt(hello, PromptKind.REPROMPT, lang, question.voice), question])


def nudged(svc: Services, s: Session, lead: Lead, touch: Touch) -> None:
    """A nudge went out: plan the next one, or the end of the wait."""
    conv = _waiting(s, touch)
    if conv is not None:
        _plan(svc, s, lead, conv, int(touch.step or "1") + 1)


def gone_quiet(svc: Services, s: Session, lead: Lead, touch: Touch) -> str:
    """No reply to the last nudge: close the conversation as cut off and end the chase with a person told."""
    conv = _waiting(s, touch)
    if conv is None:
        return "the conversation moved on"
    step = (conv.state or {}).get("step")
    cut_off(s, lead, conv)
    record(s, lead.id, "gone_quiet", channel="sms", step=step, nudges=int(touch.step or "1") - 1)
    if lead.channel != "call":  # a lead who chose calls keeps its call cadence; others end here
        finished(svc, s, lead, cadence_for(svc, lead))
    lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"no reply by text since step '{step}'"
    return "went quiet"


def expect_email_reply(svc: Services, s: Session, lead: Lead) -> None:
    """The questions went by email, whose replies reach a mailbox, not leadbot: if the lead neither calls
    nor texts back within `quiet.email_after`, the managers are told to look for a reply."""
    after = cadence_for(svc, lead).quiet.email_after
    touches.plan(svc, s, lead.id, f"email_wait:{touches.reach(s, lead.id).round}", EMAIL_WAIT, "email",
                 utcnow() + after, step=str(int(after.total_seconds())))


def email_unanswered(svc: Services, s: Session, lead: Lead, touch: Touch) -> tuple[str, str]:
    """(touch status, reason): still only emailed, so the cadence ends here and the managers hear of it."""
    if lead.status != LeadStatus.CONTACTING.value:
        return TouchStatus.CANCELLED, f"the lead answered (now {lead.status})"
    hours = round(int(touch.step or 0) / 3600)
    finished(svc, s, lead, cadence_for(svc, lead), last_email=False)  # the managers are told
    lead.status_reason = f"no call or text back {hours} h after the email; look for an emailed reply"
    return TouchStatus.DONE, "no call or text back"
