"""Texts and emails for salespeople and managers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.notify import (
    SMS_LIMIT,
    escalation_email,
    format_elapsed,
    handoff_email,
    handoff_sms_text,
    hung_up_reason,
    reassigned_reason,
    reassigned_sms_text,
    reminder_sms_text,
    spoken_time,
)
from tests.handoff.factories import MANAGERS, WEEKDAYS_9_TO_5, rep

NOW = datetime(2024, 6, 4, 15, 3, 12)
SUBMITTED = datetime(2024, 6, 4, 15, 0, 0)
LINK = "https://lb.example.com/l/a1b2c3"
DANA = rep("Dana Reyes", "+15125550142", hours=WEEKDAYS_9_TO_5)


@dataclass
class FakeLead:
    """What the builders read from a lead."""

    name: str = "Maria Lopez"
    phone: str = "(512) 555-0100"
    service: str | None = "Roofing"
    email: str | None = "maria@example.com"
    message: str | None = "Leak over the garage"
    id: str = "lead123"
    created_at: datetime = SUBMITTED
    extra: dict[str, str] = field(default_factory=dict)


ANSWERS = {"roof_age": "20 years", "budget": "$10-15k", "timeline": "this month"}


def test_handoff_text_has_every_piece() -> None:
    text = handoff_sms_text(FakeLead(), ANSWERS, DANA, SUBMITTED, LINK, NOW)
    assert text.splitlines() == [
        "New lead for Dana: Maria Lopez +15125550100",
        "Roofing - form sent 3m 12s ago",
        "Roof age: 20 years",
        "Budget: $10-15k",
        "Timeline: this month",
        LINK,
        "Reply 1 when you've called",
    ]


def test_reason_line_comes_first() -> None:
    text = handoff_sms_text(FakeLead(), ANSWERS, DANA, SUBMITTED, LINK, NOW, reason=hung_up_reason(42))
    assert text.splitlines()[0] == "Prospect hung up at 00:42"
    assert reassigned_reason(DANA, 300) == "Reassigned: Dana Reyes did not reply in 5 min"


def test_long_answers_are_cut_and_counted() -> None:
    answers = {f"question_{i}": "x" * 80 for i in range(10)}
    text = handoff_sms_text(FakeLead(), answers, DANA, SUBMITTED, LINK, NOW)
    assert len(text) <= SMS_LIMIT
    lines = text.splitlines()
    assert lines[2] == "Question 0: " + "x" * 45 + "..."  # cut at 60 characters
    assert any(line.endswith("more in email") for line in lines)
    assert lines[-2:] == [LINK, "Reply 1 when you've called"]


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=300), phone=st.text(max_size=40), service=st.none() | st.text(max_size=200),
    answers=st.dictionaries(st.text(max_size=100), st.text(max_size=500) | st.integers(), max_size=30),
    waited=st.integers(min_value=-10**6, max_value=10**10), reason=st.none() | st.text(max_size=300),
    link=st.text(max_size=150),
)
def test_handoff_text_never_exceeds_320(name: str, phone: str, service: str | None,
                                        answers: dict[str, object], waited: int, reason: str | None,
                                        link: str) -> None:
    lead = FakeLead(name=name, phone=phone, service=service)
    submitted = datetime(2000, 1, 1) if waited > 10**9 else NOW - timedelta(seconds=waited)
    text = handoff_sms_text(lead, answers, DANA, submitted, link, NOW, reason=reason)
    assert len(text) <= SMS_LIMIT
    assert text.endswith("Reply 1 when you've called")
    assert "New lead for Dana: " in text and " ago" in text


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=300), service=st.none() | st.text(max_size=300), link=st.text(max_size=300))
def test_reminder_and_reassignment_texts_stay_short(name: str, service: str | None, link: str) -> None:
    lead = FakeLead(name=name, service=service)
    due = SUBMITTED + timedelta(minutes=5)
    assert len(reminder_sms_text(lead, DANA, SUBMITTED, due, link, NOW)) <= SMS_LIMIT
    assert len(reassigned_sms_text(lead, DANA, 300)) <= SMS_LIMIT


def test_reminder_text() -> None:
    text = reminder_sms_text(FakeLead(), DANA, SUBMITTED, SUBMITTED + timedelta(minutes=5), LINK, NOW)
    assert "handed to you 3m 12s ago" in text
    assert "1m 48s left before your manager is told" in text
    assert text.endswith("Reply 1 when you've called")


def test_reassigned_text() -> None:
    assert reassigned_sms_text(FakeLead(), rep("Sam Ortiz", "+15125550999"), 300) == (
        "Maria Lopez (Roofing) was reassigned to Sam Ortiz: no reply within 5 min. No need to call.")


def test_elapsed_and_spoken_time() -> None:
    assert [format_elapsed(s) for s in (-3, 45, 192, 7500, 90000)] == [
        "0s", "45s", "3m 12s", "2h 05m", "1d 1h"]
    tuesday_night = datetime(2024, 6, 5, 3, 0, tzinfo=UTC)  # Tue 22:00 in Chicago
    wed_9 = datetime(2024, 6, 5, 14, 0, tzinfo=UTC)
    assert spoken_time(wed_9, "America/Chicago", tuesday_night) == "9 AM tomorrow"
    monday = wed_9 + timedelta(days=5, minutes=30)
    assert spoken_time(monday, "America/Chicago", tuesday_night) == "9:30 AM Monday"
    assert spoken_time(wed_9, "America/Los_Angeles", tuesday_night) == "7 AM tomorrow"


def test_handoff_email_copies_managers_and_states_the_deadline() -> None:
    msg = handoff_email(FakeLead(), ANSWERS, DANA, MANAGERS, SUBMITTED, LINK, NOW,
                        due_at=NOW + timedelta(minutes=5), mail_from="leadbot@example.com")
    assert msg["To"] == "dana@example.com"
    assert msg["Cc"] == "priya@example.com, tom@example.com"
    assert msg["Subject"] == "New lead for Dana Reyes: Maria Lopez (Roofing) - reply by 10:08 AM CDT"
    assert msg["X-Leadbot-Lead-Id"] == "lead123"
    body = msg.get_content()
    for piece in ("Phone:     +15125550100", "Roof age: 20 years", "Leak over the garage",
                  "by 10:08 AM CDT (5 min from now)", LINK, "Copied: Priya Natarajan, Tom Becker"):
        assert piece in body


def test_escalation_email_names_the_rep() -> None:
    sam = rep("Sam Ortiz", "+15125550999")
    msg = escalation_email(FakeLead(), DANA, MANAGERS, SUBMITTED, SUBMITTED + timedelta(minutes=5),
                           SUBMITTED + timedelta(minutes=6), LINK, "leadbot@example.com", next_rep=sam)
    assert msg["To"] == "priya@example.com, tom@example.com"
    assert msg["Cc"] == "dana@example.com"
    assert msg["Subject"] == "SLA missed: Dana Reyes did not acknowledge Maria Lopez within 5 min"
    body = msg.get_content()
    assert "Dana Reyes (+15125550142) did not acknowledge" in body
    assert "reassigned to Sam Ortiz (+15125550999)" in body
