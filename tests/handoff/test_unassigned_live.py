"""When nobody can take a qualified lead, a person hears of it at once and the lead waits on the
unassigned list until a rep is free, then goes to them before newer leads. Through gunicorn,
`leadbot worker` (its sweeper every second), the loopback Twilio emulator and a real SMTP server."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from zoneinfo import ZoneInfo

import requests

from tests.handoff import stack as live

ALICE, PRIYA = "+15125550101", "+15125550190"
MANAGERS = """\
managers:
  - {name: Priya Natarajan, email: priya@example.com, phone: "+1 512 555 0190"}
  - {name: Tom Becker, email: tom@corp.local}
salespeople:
"""


def alice(extra: str = "") -> str:
    """A roster with the two managers and Alice, who sells kitchen remodels."""
    return MANAGERS + (f'  - {{name: Alice Able, phone: "{ALICE}", email: alice@example.com, '
                       f"services: [{live.SERVICE}]{extra}}}\n"
                       '  - {name: Bob Baker, phone: "+15125550102", email: bob@example.com, '
                       "services: [solar]}\n")


def managers_told(emulator, inbox, stack, lead_id: str, phone: str, reason: str) -> None:  # noqa: ANN001
    """Priya (the manager with a phone) is texted, both managers emailed, and the lead is listed."""
    def alerts() -> list:  # noqa: ANN202
        return [e for e in list(inbox.envelopes) if b"Subject: Unassigned lead" in e.content]

    live.wait(lambda: live.texts_to(emulator, PRIYA) and alerts(), what="the managers' alert")
    text, = live.texts_to(emulator, PRIYA)
    assert text.startswith(f"Unassigned lead: Ada Lovelace {phone} (kitchen remodel), form sent ")
    assert reason in text
    envelope, = alerts()
    assert envelope.rcpt_tos == ["priya@example.com", "tom@corp.local"]
    mail = message_from_bytes(envelope.content)
    assert mail["Subject"] == "Unassigned lead: Ada Lovelace (kitchen remodel) - nobody available"
    assert reason in mail.get_payload(decode=True).decode()
    listed, = live.unassigned(stack)
    assert listed["lead_id"] == lead_id and reason in listed["reason"] and listed["phone"] == phone
    kinds = live.kinds(stack, lead_id)
    assert kinds.count("handoff_unassigned") == 1 and kinds.count("handoff_email_sent") == 1


def offered_to_alice(emulator, stack, lead_id: str, phone: str, before: int) -> None:  # noqa: ANN001
    """The waiting lead reaches Alice as an SMS handoff and leaves the unassigned list."""
    live.wait(lambda: len(live.texts_to(emulator, ALICE)) > before, what="the waiting lead's text to Alice")
    text = live.texts_to(emulator, ALICE)[-1]
    assert text.startswith("Waited ") and f"Ada Lovelace {phone}" in text and "Reply 1" in text
    assert live.unassigned(stack) == []
    assert "handoff_from_waiting" in live.kinds(stack, lead_id)


def test_at_capacity_managers_are_told_and_the_lead_goes_to_alice_when_she_frees_up(
        tmp_path, db_url, redis_url, emulator, smtp_server):
    controller, inbox = smtp_server
    roster = tmp_path / "roster.yaml"
    roster.write_text(alice(", capacity: 1"))
    stack = live.start(tmp_path, db_url, redis_url, emulator, controller.port, roster)
    try:
        assert requests.get(stack.url + "/reports/unassigned", timeout=5).status_code == 401
        first = live.qualify_by_api(stack, emulator, phone="+1 512 555 0100")
        live.wait(lambda: live.texts_to(emulator, ALICE), what="the first lead's text to Alice")
        second = live.qualify_by_api(stack, emulator, phone="+1 512 555 0111")
        managers_told(emulator, inbox, stack, second, "+15125550111",
                      "every matched rep is at capacity (Alice Able)")
        assert len(live.texts_to(emulator, ALICE)) == 1  # still full: nothing more for her yet
        assert live.text_in(stack, ALICE, "1").status_code == 200  # she has called the first one
        offered_to_alice(emulator, stack, second, "+15125550111", before=1)
        assert "handoff_acked" in live.kinds(stack, first)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_all_off_shift_prospect_hears_when_managers_are_told_and_a_roster_fix_offers_it(
        tmp_path, db_url, redis_url, emulator, smtp_server):
    controller, inbox = smtp_server
    chicago = datetime.now(ZoneInfo("America/Chicago"))
    tomorrow = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(chicago + timedelta(days=1)).weekday()]
    roster = tmp_path / "roster.yaml"
    roster.write_text(alice(f', hours: {{timezone: America/Chicago, {tomorrow}: "09:00-17:00"}}'))
    stack = live.start(tmp_path, db_url, redis_url, emulator, controller.port, roster)
    try:
        lead_id, prospect = live.qualify_by_voice(stack, emulator)
        assert "Alice will call you at 9 AM tomorrow." in prospect.heard[-1] and prospect.ended
        managers_told(emulator, inbox, stack, lead_id, "+15125550100", "every matched rep is off shift")
        assert live.texts_to(emulator, ALICE) == []
        roster.write_text(alice())  # the roster is fixed: Alice is on call around the clock
        offered_to_alice(emulator, stack, lead_id, "+15125550100", before=0)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def test_nobody_active_sells_it_managers_are_told_and_activating_a_rep_offers_it(
        tmp_path, db_url, redis_url, emulator, smtp_server):
    controller, inbox = smtp_server
    roster = tmp_path / "roster.yaml"
    roster.write_text(alice(", active: false"))  # no usable rep for the service: on leave
    stack = live.start(tmp_path, db_url, redis_url, emulator, controller.port, roster)
    try:
        lead_id = live.qualify_by_api(stack, emulator)
        managers_told(emulator, inbox, stack, lead_id, "+15125550100",
                      "no active salesperson sells 'kitchen remodel'")
        roster.write_text(alice(", active: true"))
        offered_to_alice(emulator, stack, lead_id, "+15125550100", before=0)
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
