"""Channel renderers: TwiML checked by parsing the XML, SMS bodies checked as text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot.channels import voice_render as voice
from bot.flows import engine
from bot.flows import sms_render as sms
from bot.flows.engine import Event, EventKind
from bot.flows.model import Flow

from .conftest import LEAD, NOW

ACTION = "https://leadbot.test/voice/turn?conversation=abc&step=1"


def xml(response: object) -> ET.Element:
    return ET.fromstring(str(response))


def test_first_turn_is_one_gather_with_every_say_inside(prequal: Flow) -> None:
    _, prompts, _ = engine.start(prequal, LEAD, "voice")
    root = xml(voice.render(prompts, action_url=ACTION))
    assert root.tag == "Response" and [child.tag for child in root] == ["Gather"]
    gather = root[0]
    assert gather.attrib == {
        "input": "dtmf speech",
        "action": ACTION,
        "method": "POST",
        "speechTimeout": "auto",
        "timeout": "5",
        "actionOnEmptyResult": "true",
        "language": "en-US",
        "hints": "yes, no",
        "numDigits": "1",
    }
    says = gather.findall("Say")
    assert [s.attrib["voice"] for s in says] == ["Polly.Joanna", "Polly.Joanna"]
    assert (
        says[0].text.startswith("Hi Maria,") and says[1].text == "Are you looking for a new roof right now?"
    )


def test_choice_gather_lists_keys_and_hints(prequal: Flow) -> None:
    state, _, _ = engine.start(prequal, LEAD, "voice")
    for answer in ("yes", "5k", "asap"):
        state, prompts, _ = engine.step(prequal, state, Event.answer(answer), now=NOW)
    gather = xml(voice.render(prompts, action_url=ACTION)).find("Gather")
    assert gather is not None and gather.attrib["numDigits"] == "1"
    hints = gather.attrib["hints"].split(", ")
    assert hints[:3] == ["Me", "Together with someone", "Someone else"] and "homeowner" in hints
    assert gather[0].text.endswith("Press 1 for Me, 2 for Together with someone, or 3 for Someone else.")


def test_free_answer_gather_has_no_num_digits_and_reprompt_offers_keys(prequal: Flow) -> None:
    state, _, _ = engine.start(prequal, LEAD, "voice")
    state, prompts, _ = engine.step(prequal, state, Event.answer("yes"))
    gather = xml(voice.render(prompts, action_url=ACTION)).find("Gather")
    assert gather is not None and "numDigits" not in gather.attrib and "hints" not in gather.attrib
    state, _, _ = engine.start(prequal, LEAD, "voice")
    _, prompts, _ = engine.step(prequal, state, Event.silence())
    say = xml(voice.render(prompts, action_url=ACTION)).find("Gather/Say")
    assert say is not None and say.text.endswith("You can also press 1 for yes, or 2 for no.")


def test_spanish_gather_language_and_voice(prequal: Flow) -> None:
    _, prompts, _ = engine.start(prequal, {**LEAD, "language": "es"}, "voice")
    gather = xml(voice.render(prompts, action_url=ACTION)).find("Gather")
    assert gather is not None and gather.attrib["language"] == "es-US" and gather.attrib["hints"] == "sí, no"
    assert {s.attrib["voice"] for s in gather.findall("Say")} == {"Polly.Lupe"}


def test_outcome_says_goodbye_and_hangs_up_unless_transferring(prequal: Flow) -> None:
    state, _, _ = engine.start(prequal, LEAD, "voice")
    _, prompts, outcome = engine.step(prequal, state, Event.answer("no"))
    root = xml(voice.render(prompts, outcome, action_url=ACTION))
    assert [c.tag for c in root] == ["Say", "Hangup"] and root[0].text.startswith(
        "Thanks for your time, Maria."
    )
    ready = engine.decide(prequal, {"need": "yes", "timing": {"days_from_now": 0}, "authority": "me"}, LEAD)
    response = voice.render([], ready, action_url=ACTION)
    response.dial("+15005550001")  # the app appends the transfer itself
    assert [c.tag for c in xml(response)] == ["Say", "Dial"]
    assert [c.tag for c in xml(voice.render([], ready, action_url=ACTION, hangup=True))] == ["Say", "Hangup"]


def test_gather_callback_to_event() -> None:
    assert voice.event_from_gather({"SpeechResult": " Yes. ", "Digits": ""}) == Event.answer("Yes.")
    assert voice.event_from_gather({"Digits": "1"}) == Event.answer(digits="1")
    assert voice.event_from_gather({}).kind == EventKind.SILENCE


def test_sms_bodies(prequal: Flow) -> None:
    state, prompts, _ = engine.start(prequal, LEAD, "sms")
    assert sms.render(prompts) == (
        "Hi Maria, this is the team you just contacted about a new roof. "
        "I have four quick questions so we can "
        "help you faster.\nAre you looking for a new roof right now?\nReply 1 for yes or 2 for no.\n"
        "Reply STOP to opt out."
    )
    state, prompts, _ = engine.step(prequal, state, Event.answer("1"))
    assert sms.render(prompts) == (
        'Roughly what budget do you have in mind? A ballpark is fine, or say "not sure".'
    )
    _, prompts, outcome = engine.step(prequal, state, Event.answer("STOP"))
    assert sms.render(prompts, outcome) == "Understood. We won't contact you again. Goodbye."
    assert sms.event_from_sms("  ").kind == EventKind.SILENCE
    _, prompts, _ = engine.start(prequal, {**LEAD, "language": "es"}, "sms")
    assert sms.render(prompts).endswith(
        "Responda 1 para sí o 2 para no.\nResponda STOP para no recibir más mensajes."
    )
