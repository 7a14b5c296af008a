"""A text conversation the prospect stops answering: nudged, then ended with the email last and a
person told, never left `in_conversation` for ever. Driven by the moved clock through the real SMS
webhook, RQ jobs, the Twilio emulator and a real SMTP server."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

from bot.flows.cadence import load_cadences
from tests.lifecycle_kit import events, lead_row, sms_in, texts, work
from tests.test_lifecycle import post_lead, settings, smtp, tm, travel_and_run  # noqa: F401 (fixtures)
from tests.timemachine import a_weekday_at


def test_an_sms_lead_who_never_answers_is_nudged_once_then_emailed_and_closed(
    client, auth, services, emulator, tm, smtp  # noqa: F811
):
    lead_id = post_lead(client, auth, channel="sms")
    work(services)
    [first] = texts(emulator)
    assert "?" in first and lead_row(services, lead_id).status in ("contacting", "in_conversation")
    asked = tm.now()
    assert travel_and_run(tm, services, asked + timedelta(minutes=29)) == []  # not yet
    travel_and_run(tm, services, asked + timedelta(minutes=31))
    nudge = texts(emulator)[-1]
    question = [line for line in first.splitlines()[1:] if line.endswith("?")][0]
    assert nudge.startswith("Still there, Ada?\n" + question) and len(texts(emulator)) == 2
    travel_and_run(tm, services, asked + timedelta(minutes=62))
    assert len(texts(emulator)) == 2  # one nudge, as the default cadence says, then no more texts
    row = lead_row(services, lead_id)
    assert row.status == "no_answer" and row.status_reason.startswith("no reply by text since step")
    kinds = [t for t, _ in events(services, lead_id)]
    assert "gone_quiet" in kinds and "cadence_finished" in kinds
    tm.release()
    work(services)
    # The cadence's email last (the prospect has one more way to answer), and the managers told.
    mail, managers = sorted(smtp.envelopes, key=lambda e: len(e.rcpt_tos))
    assert mail.rcpt_tos == ["ada@example.com"]
    assert b"Unreachable lead: Ada Lovelace (roofing) - no reply by text since step" in managers.content


def test_a_reply_cancels_the_nudge_and_the_next_question_waits_afresh(
    client, auth, services, emulator, tm, signed  # noqa: F811
):
    lead_id = post_lead(client, auth, channel="sms", service="kitchen remodel")
    work(services)
    start = tm.now()
    travel_and_run(tm, services, start + timedelta(minutes=20))
    second = sms_in(client, services, signed, "1")  # answers the first question 20 minutes in
    cancelled = [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")]
    assert cancelled == ["the lead replied"]
    travel_and_run(tm, services, start + timedelta(minutes=31))
    assert len(texts(emulator)) == 1  # the first question's nudge never went: it was answered
    travel_and_run(tm, services, start + timedelta(minutes=51))
    nudge = texts(emulator)[-1]
    assert nudge.startswith("Still there, Ada?") and len(texts(emulator)) == 2
    said = ElementTree.fromstring(second).findtext("Message")
    assert said.startswith("Roughly what budget")  # the second question ...
    assert nudge == "Still there, Ada?\n" + said  # ... is the one the nudge asks again

def test_a_nudge_due_at_night_waits_for_the_morning(client, auth, services, emulator, tm):  # noqa: F811
    tm.travel(a_weekday_at(20, 45))  # the first text at 20:45 in Austin; its nudge falls due at 21:15
    lead_id = post_lead(client, auth, channel="sms")
    work(services)
    travel_and_run(tm, services, a_weekday_at(21, 20))
    assert len(texts(emulator)) == 1
    deferred = [d for _, d in events(services, lead_id, "touch_deferred")]
    assert deferred and "21:00" in deferred[0]["reason"]
    travel_and_run(tm, services, a_weekday_at(8, 1) + timedelta(days=1))
    assert texts(emulator)[-1].startswith("Still there, Ada?")


def test_quiet_settings_are_checked_with_file_and_line(tmp_path):
    path = tmp_path / "cadence.yaml"
    path.write_text("cadences:\n  default:\n    touches:\n      - call: 2m\n"
                    "    quiet:\n      after: soon\n      nudges: 9\n      colour: red\n")
    book, errors = load_cadences(path)
    assert book is None
    found = {(e.line, e.message.split(" ")[0]) for e in errors}
    assert (6, "expected") in found and (7, "expected") in found
    assert any(e.line == 8 and "unknown key" in e.message for e in errors)


def test_an_email_lead_who_never_calls_or_texts_back_is_reported_to_the_managers_next_day(
    client, auth, services, emulator, tm, smtp  # noqa: F811
):
    lead_id = post_lead(client, auth, channel="email")
    work(services)
    [questions] = smtp.envelopes
    assert questions.rcpt_tos == ["ada@example.com"]
    sent = tm.now()
    travel_and_run(tm, services, sent + timedelta(hours=23))
    assert len(smtp.envelopes) == 1 and lead_row(services, lead_id).status == "contacting"
    travel_and_run(tm, services, sent + timedelta(days=1, minutes=1))
    tm.release()
    work(services)
    row = lead_row(services, lead_id)
    assert row.status == "no_answer" and row.status_reason.startswith("no call or text back 24 h after")
    [managers] = smtp.envelopes[1:]  # no "we tried to call" email: this lead was never called
    assert "ada@example.com" not in managers.rcpt_tos
    assert b"Unreachable lead: Ada Lovelace (roofing) - no call or text back 24 h" in managers.content


def test_an_email_lead_who_texts_back_is_not_reported(
    client, auth, services, emulator, tm, smtp, signed  # noqa: F811
):
    lead_id = post_lead(client, auth, channel="email")
    work(services)
    sent = tm.now()
    travel_and_run(tm, services, sent + timedelta(hours=3))
    assert "?" in sms_in(client, services, signed, "hi, got your email")  # the questions, by text now
    travel_and_run(tm, services, sent + timedelta(days=1, minutes=1))
    assert len(smtp.envelopes) == 1  # only the questions: nobody had to be told
    assert [d["reason"] for _, d in events(services, lead_id, "touch_cancelled")
            if d["kind"] == "email_wait"] == ["the lead replied"]
