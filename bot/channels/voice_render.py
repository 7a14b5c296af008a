"""TwiML for the voice channel, built only with twilio's VoiceResponse; pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twilio.twiml.voice_response import VoiceResponse

from bot.flows.engine import Event, Outcome, Prompt, PromptKind
from bot.flows.model import ActionKind, AnswerType
from bot.flows.safetext import xml_safe

SPEECH_LANGUAGES = {"en": "en-US", "es": "es-US"}
MAX_HINTS = 60  # Twilio accepts more, but long hint lists stop helping recognition
PRESS = {"en": ("Press {key} for {label}", ", or ", ". "), "es": ("Marque {key} para {label}", ", o ", ". ")}
YES_NO_KEYS = {
    "en": "You can also press 1 for yes, or 2 for no.",
    "es": "También puede marcar 1 para sí, o 2 para no.",
}


def keypad_hint(prompt: Prompt) -> str:
    """The spoken keypad instructions for a prompt ("" when typing would not help)."""
    lang = prompt.language if prompt.language in PRESS else "en"
    if prompt.answer_type == AnswerType.YES_NO.value:
        return YES_NO_KEYS[lang] if prompt.kind == PromptKind.REPROMPT else ""
    if prompt.answer_type != AnswerType.CHOICE.value or not prompt.keys:
        return ""
    phrase, last_join, end = PRESS[lang]
    parts = [
        phrase.format(key=key, label=label)
        if i == 0
        else f"{key} for {label}"
        if lang == "en"
        else f"{key} para {label}"
        for i, (key, label) in enumerate(prompt.keys)
    ]
    body = ", ".join(parts[:-1]) + last_join + parts[-1] if len(parts) > 1 else parts[0]
    return body + end.strip()


def render(
    prompts: Sequence[Prompt],
    outcome: Outcome | None = None,
    *,
    action_url: str,
    hangup: bool | None = None,
    timeout: int = 5,
    response: VoiceResponse | None = None,
) -> VoiceResponse:
    """Prompts as one <Gather> (all <Say>s inside, so callers can barge in), or the closing of an outcome.

    After an outcome the call hangs up unless the action is a warm transfer (the caller appends the
    <Dial>); pass `hangup` to override.
    """
    response = response or VoiceResponse()
    asking = next((p for p in reversed(prompts) if p.expects_input), None)
    if outcome is not None or asking is None:
        for prompt in prompts:
            response.say(xml_safe(prompt.text), voice=prompt.voice)
        if outcome is not None:
            if outcome.say:
                response.say(xml_safe(outcome.say), voice=outcome.voice)
            if hangup if hangup is not None else outcome.kind != ActionKind.WARM_TRANSFER:
                response.hangup()
        return response
    options = {
        "input": "dtmf speech",
        "action": action_url,
        "method": "POST",
        "speech_timeout": "auto",
        "timeout": timeout,
        "action_on_empty_result": True,
        "language": SPEECH_LANGUAGES.get(asking.language, "en-US"),
    }
    if asking.hints:
        options["hints"] = xml_safe(", ".join(h.replace(",", " ") for h in asking.hints[:MAX_HINTS]))
    if asking.num_digits:
        options["num_digits"] = asking.num_digits
    gather = response.gather(**options)
    for prompt in prompts:
        hint = keypad_hint(prompt) if prompt.expects_input else ""
        gather.say(xml_safe(f"{prompt.text} {hint}".strip()), voice=prompt.voice)
    return response


def event_from_gather(params: Mapping[str, str]) -> Event:
    """The engine event for Twilio's <Gather> callback (SpeechResult and/or Digits; neither is silence)."""
    text = (params.get("SpeechResult") or "").strip()
    digits = (params.get("Digits") or "").strip()
    return Event.answer(text, digits) if text or digits else Event.silence()


def turn_url(base_url: str, conv_id: str, state: dict | None = None) -> str:
    """The Gather action, numbered with the turn it answers: a replayed turn is recognised by its number."""
    url = f"{base_url}/twilio/voice/turn/{conv_id}"
    return f"{url}?t={state.get('turns', 0)}" if state is not None else url
