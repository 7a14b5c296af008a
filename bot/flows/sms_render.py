"""Text-message bodies for the SMS channel: the same prompts, with "Reply 1 for yes" style hints."""

from __future__ import annotations

from collections.abc import Sequence

from bot.flows.engine import Event, Outcome, Prompt, PromptKind
from bot.flows.safetext import xml_safe

REPLY = {
    "en": ("Reply {pairs}.", "{key} for {label}", " or "),
    "es": ("Responda {pairs}.", "{key} para {label}", " o "),
}
STOP_NOTICE = {"en": "Reply STOP to opt out.", "es": "Responda STOP para no recibir más mensajes."}


def reply_hint(prompt: Prompt) -> str:
    """ "Reply 1 for yes or 2 for no." when a one-key reply fits, else ""."""
    if not prompt.keys:
        return ""
    sentence, pair, joiner = REPLY.get(prompt.language, REPLY["en"])
    pairs = [pair.format(key=key, label=label) for key, label in prompt.keys]
    return sentence.format(pairs=", ".join(pairs[:-1]) + joiner + pairs[-1] if len(pairs) > 1 else pairs[0])


def render(prompts: Sequence[Prompt], outcome: Outcome | None = None) -> str:
    """One message body; the first message of a conversation (it has the greeting) says how to opt out."""
    parts = [p.text for p in prompts]
    asking = next((p for p in reversed(prompts) if p.expects_input), None)
    if asking is not None and outcome is None:
        parts.append(reply_hint(asking))
    if outcome is not None and outcome.say:
        parts.append(outcome.say)
    if any(p.kind == PromptKind.GREETING for p in prompts):
        lang = prompts[0].language
        parts.append(STOP_NOTICE.get(lang, STOP_NOTICE["en"]))
    # A control character from a lead field or an answer would make the reply TwiML invalid.
    return xml_safe("\n".join(part for part in parts if part))


def event_from_sms(body: str | None) -> Event:
    """The engine event for an inbound text (an empty body counts as silence)."""
    text = (body or "").strip()
    return Event.answer(text) if text else Event.silence()
