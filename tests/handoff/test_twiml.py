"""Pure TwiML builders and answer wording, checked by parsing the XML."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from bot.twilio.twiml_player import parse_twiml
from handoff.answer_text import readable_answers
from handoff.twiml import (
    hold_in_conference,
    hold_message,
    join_conference,
    nobody_free,
    whisper,
    whisper_text,
)


def test_prospect_waits_in_a_conference_that_only_a_rep_starts() -> None:
    dial, = parse_twiml(str(hold_in_conference(VoiceResponse(), "leadbot-x", hold_url="https://h/hold",
                                               events_url="https://h/ev", after_url="https://h/after")))
    assert (dial["verb"], dial["action"]) == ("Dial", "https://h/after")
    conf, = dial["children"]
    assert conf["text"] == "leadbot-x" and conf["beep"] == "false"
    assert (conf["startConferenceOnEnter"], conf["endConferenceOnExit"]) == ("false", "true")
    assert (conf["waitUrl"], conf["statusCallback"]) == ("https://h/hold", "https://h/ev")
    rep = parse_twiml(str(join_conference("leadbot-x", "https://h/ev")))
    assert [v["verb"] for v in rep] == ["Say", "Dial"]
    assert rep[1]["children"][0]["startConferenceOnEnter"] == "true"


def test_hold_loops_with_music_and_a_new_message() -> None:
    first, again = parse_twiml(str(hold_message(1, "https://h/hold?n=2", "Polly.Joanna"))), \
        parse_twiml(str(hold_message(2, "https://h/hold?n=3")))
    assert [v["verb"] for v in first] == ["Say", "Play", "Redirect"]
    assert first[0]["voice"] == "Polly.Joanna" and first[2]["text"] == "https://h/hold?n=2"
    assert first[0]["text"] != again[0]["text"] and "still connecting" in again[0]["text"]


def test_whisper_asks_for_one_key_and_reads_the_answers() -> None:
    answers = readable_answers({"budget": {"min": 5000, "max": None, "currency": "USD"},
                                "authority": "someone_else", "need": "unknown", "empty": ""})
    assert answers == {"budget": "$5,000+", "authority": "someone else", "need": "not sure"}
    text = whisper_text("Alice Able", "Maria Lopez", "roofing", answers)
    assert text == ("New lead on the line for Alice: Maria Lopez, about roofing. Budget: $5,000+. "
                    "Authority: someone else. Need: not sure.")
    gather, = parse_twiml(str(whisper(text, "https://h/keys")))
    assert (gather["numDigits"], gather["action"], gather["input"]) == ("1", "https://h/keys", "dtmf")
    assert gather["children"][0]["text"].endswith("Press 1 to take the call now, or 2 to pass.")


def test_the_promise_when_nobody_accepts_uses_the_sla() -> None:
    assert "Alice will call you back within 5 minutes." in nobody_free("Alice Able", 300)
    assert "within 1 minute." in nobody_free("Alice Able", 45)
