"""TwiML for the live transfer, built only with twilio's VoiceResponse: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import VoiceResponse

from bot.flows.safetext import xml_safe
from handoff.defaults import HOLD_MUSIC_URL, WHISPER_KEY_SECONDS
from handoff.notify import clean, label

HOLD_FIRST = "Please hold for a moment while I connect you with a specialist."
HOLD_AGAIN = "Thanks for waiting. I'm still connecting you with a specialist."
WHISPER = "New lead on the line for {rep}: {name}, about {service}. {answers}"
WHISPER_KEYS = "Press 1 to take the call now, or 2 to pass."
WHISPER_AGAIN = "Sorry, that key isn't an option. "
CONNECTING = "Connecting you now."
REP_PASSED = "No problem, we'll offer it to someone else. Goodbye."
REP_TOO_LATE = "Sorry, the caller is no longer waiting. We'll text you the details. Goodbye."
NOBODY_FREE = ("I'm sorry, all of our specialists are on other calls right now. {rep} will call you back "
               "within {minutes}. Thank you for your patience. Goodbye.")
NEXT_SHIFT = ("Our specialists have finished for the day, so I can't connect you right now. "
              "{rep} will call you at {when}. Thank you, goodbye.")
NO_SPECIALIST = "Thank you. A specialist will get back to you as soon as possible. Goodbye."
AFTER_CALL = "Thanks for calling. Goodbye."
CONFERENCE_EVENTS = "start end join leave"


def hold_in_conference(response: VoiceResponse, name: str, *, hold_url: str, events_url: str,
                       after_url: str) -> VoiceResponse:
    """Park the prospect in conference ``name``: hold messages and music until a rep starts it."""
    dial = response.dial(action=after_url, method="POST")
    dial.conference(name, wait_url=hold_url, wait_method="POST", start_conference_on_enter=False,
                    end_conference_on_exit=True, beep=False, status_callback=events_url,
                    status_callback_method="POST", status_callback_event=CONFERENCE_EVENTS)
    return response


def hold_message(visit: int, again_url: str, voice: str | None = None) -> VoiceResponse:
    """What the waiting prospect hears: a message, music, then the same webhook again (never silence)."""
    response = VoiceResponse()
    response.say(HOLD_FIRST if visit <= 1 else HOLD_AGAIN, **_voice(voice))
    response.play(HOLD_MUSIC_URL)
    response.redirect(again_url, method="POST")
    return response


def whisper_text(rep_name: str, lead_name: str, service: str | None, answers: Mapping[str, str]) -> str:
    """What the rep hears before deciding: who, what for, and each answer."""
    said = " ".join(f"{label(k)}: {clean(v, 60)}." for k, v in answers.items())
    return WHISPER.format(rep=clean(rep_name.split(" ")[0], 20), name=clean(lead_name, 40) or "a prospect",
                          service=clean(service or "a project", 30), answers=said).strip()


def whisper(text: str, keys_url: str, *, again: bool = False) -> VoiceResponse:
    """The whisper inside a one-key Gather; no key at all also posts to ``keys_url``."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, action=keys_url, method="POST",
                             timeout=WHISPER_KEY_SECONDS, action_on_empty_result=True)
    gather.say(xml_safe((WHISPER_AGAIN if again else "") + f"{text} {WHISPER_KEYS}"))
    return response


def join_conference(name: str, events_url: str) -> VoiceResponse:
    """The accepting rep enters and starts the conference; when they leave it ends."""
    response = VoiceResponse()
    response.say(CONNECTING)
    dial = response.dial()
    dial.conference(name, start_conference_on_enter=True, end_conference_on_exit=True, beep=False,
                    status_callback=events_url, status_callback_method="POST",
                    status_callback_event=CONFERENCE_EVENTS)
    return response


def goodbye(text: str | None = None, voice: str | None = None) -> VoiceResponse:
    """An optional sentence, then hang up."""
    response = VoiceResponse()
    if text:
        response.say(xml_safe(text), **_voice(voice))
    response.hangup()
    return response


def nobody_free(rep_name: str, sla_seconds: int) -> str:
    """The honest promise when no rep accepted the live transfer."""
    minutes = max(1, round(sla_seconds / 60))
    return NOBODY_FREE.format(rep=clean(rep_name.split(" ")[0], 20) or "A specialist",
                              minutes=f"{minutes} minute{'s' if minutes != 1 else ''}")


def _voice(voice: str | None) -> dict[str, str]:
    """Say's voice attribute, only when one is set."""
    return {"voice": voice} if voice else {}
