"""After a bridged warm transfer the rep gets the lead in writing and the managers a copy, through
gunicorn, `leadbot worker`, the loopback Twilio emulator and a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes

from bot.twilio.twiml_player import last
from tests.handoff import stack as live

ROSTER = f"""\
managers:
  - {{name: Priya Natarajan, email: priya@example.com}}
  - {{name: Tom Becker, email: tom@example.com}}
salespeople:
  - {{name: Alice Able, phone: "+15125550101", email: alice@example.com, services: [{live.SERVICE}]}}
"""
ALICE = "+15125550101"


def test_accepted_transfer_texts_and_emails_the_rep_with_managers_in_cc(tmp_path, db_url, redis_url, emulator,
                                                                       smtp_server):
    controller, inbox = smtp_server
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    stack = live.start(tmp_path, db_url, redis_url, emulator, controller.port, roster)
    try:
        lead_id, prospect = live.qualify_by_voice(stack, emulator)
        assert last(prospect.verbs, "Conference") is not None  # holding in the conference
        rep, call = live.leg(emulator, ALICE)
        rep.answer(call["url"])
        assert last(rep.reply(digits="1"), "Conference") is not None  # accepted: bridged to the prospect

        live.wait(lambda: "handoff_email_sent" in live.kinds(stack, lead_id), what="the backup email")
        envelope, = inbox.envelopes
        assert envelope.rcpt_tos == ["alice@example.com", "priya@example.com", "tom@example.com"]
        mail = message_from_bytes(envelope.content)
        assert mail["To"] == "alice@example.com" and mail["Cc"] == "priya@example.com, tom@example.com"
        assert mail["Subject"] == "Live transfer to Alice Able: Ada Lovelace (kitchen remodel)"
        body = mail.get_payload(decode=True).decode()
        assert "talking with the prospect now" in body and "Budget:" in body and "+15125550100" in body
        assert "reply 1" not in body.lower()  # the accept was the acknowledgement

        texts = [m for m in emulator.messages if m["to"] == ALICE]
        assert len(texts) == 1, texts
        assert texts[0]["body"].startswith("Live transfer - you are talking with them now: Ada Lovelace "
                                           "+15125550100\nkitchen remodel - form sent ")
        assert "Reply 1" not in texts[0]["body"]
        view = live.view(stack, lead_id)
        assert view["status"] == "handed_off"
        assert [(h["rep"], h["mode"], h["status"]) for h in view["handoff"]] == [
            ("Alice Able", "warm_transfer", "acked")]
        timeline = view["timeline"]
        sent = [e["data"] for e in timeline if e["type"] == "handoff_sms_sent"]
        assert [(d["kind"], d["to"]) for d in sent] == [("accepted", ALICE)]
        mailed = [e["data"] for e in timeline if e["type"] == "handoff_email_sent"]
        assert [(d["to"], d["cc"]) for d in mailed] == [("alice@example.com",
                                                         "priya@example.com, tom@example.com")]
        assert [e["data"]["via"] for e in timeline if e["type"] == "handoff_acked"] == ["transfer"]
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()
