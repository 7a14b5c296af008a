"""Mail delivery over a real SMTP server, and the outbox when none is configured."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from bot.settings import Settings
from bot.store.handoff_tables import MailOutbox
from handoff.mail import MailError, SmtpConfig, Transport, parse_smtp_url, send_mail
from handoff.notify import handoff_email
from tests.handoff.conftest import Db, Inbox, free_port
from tests.handoff.factories import MANAGERS, WEEKDAYS_9_TO_5, rep

NOW = datetime(2024, 6, 4, 15, 3, 12)
DANA = rep("Dana Reyes", "+15125550142", hours=WEEKDAYS_9_TO_5)


class Lead:
    """What the email builder reads."""

    def __init__(self, lead_id: str = "lead123") -> None:
        self.id, self.name, self.phone, self.service = lead_id, "Maria Lopez", "+15125550100", "Roofing"


def message(lead_id: str = "lead123") -> EmailMessage:
    """A handoff email with managers in Cc."""
    return handoff_email(Lead(lead_id), {"budget": "$12k"}, DANA, MANAGERS, NOW - timedelta(minutes=3),
                         "https://lb.example.com/l/x", NOW, NOW + timedelta(minutes=5), "leadbot@example.com")


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25)),
    ("smtp://u%40x.com:p%3Ass@mail.example.com?starttls",
     SmtpConfig("mail.example.com", 587, "u@x.com", "p:ss", starttls=True)),
    ("smtp://u:p@mail.example.com:2525?starttls=0&timeout=3", SmtpConfig("mail.example.com", 2525, "u", "p",
                                                                          timeout=3.0)),
    ("smtps://u:p@mail.example.com", SmtpConfig("mail.example.com", 465, "u", "p", implicit_tls=True)),
])
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(("url", "error"), [
    ("http://u:secret@host", "must start with smtp:// or smtps://"),
    ("smtp://", "has no host"),
    ("smtp://u:secret@host?tls=1", "unknown option(s) tls"),
    ("smtps://u:secret@host?starttls", "drop ?starttls"),
    ("smtp://u:secret@host:99999", "Port out of range"),
])
def test_bad_smtp_urls_never_show_the_password(url: str, error: str) -> None:
    with pytest.raises(MailError) as info:
        parse_smtp_url(url)
    assert error in str(info.value)
    assert "secret" not in str(info.value)


def test_real_smtp_delivery_with_cc(smtp_server: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp_server
    receipt = send_mail(f"smtp://{controller.hostname}:{controller.port}", message())
    assert receipt.transport is Transport.SMTP
    assert receipt.recipients == ("dana@example.com", "priya@example.com", "tom@example.com")
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "leadbot@example.com"
    assert sorted(envelope.rcpt_tos) == ["dana@example.com", "priya@example.com", "tom@example.com"]
    got = message_from_bytes(envelope.content, policy=default)
    assert got["To"] == "dana@example.com"
    assert got["Cc"] == "priya@example.com, tom@example.com"
    assert got["Subject"].startswith("New lead for Dana Reyes: Maria Lopez (Roofing)")
    assert got["Message-ID"] == receipt.message_id
    body = got.get_body(preferencelist=("plain",)).get_content()
    assert "Budget: $12k" in body and "Response timer" in body


def test_settings_supply_url_and_from(smtp_server: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp_server
    url = f"smtp://{controller.hostname}:{controller.port}"
    settings = Settings(SMTP_URL=url, MAIL_FROM="bot@example.com")
    msg = message()
    del msg["From"]
    send_mail(settings, msg)
    assert inbox.envelopes[0].mail_from == "bot@example.com"


def test_unreachable_server_is_a_mail_error() -> None:
    with pytest.raises(MailError) as info:
        send_mail(f"smtp://127.0.0.1:{free_port()}?timeout=2", message())
    assert "dana@example.com" in str(info.value) and "smtp://127.0.0.1" in str(info.value)


def test_no_smtp_stores_in_the_outbox(db: Db) -> None:
    lead = db.lead()
    receipt = send_mail(Settings(SMTP_URL=None), message(lead.id), db.factory)
    assert receipt.transport is Transport.OUTBOX
    with db.factory() as session:
        row = session.execute(select(MailOutbox).where(MailOutbox.id == receipt.outbox_id)).scalar_one()
    assert row.lead_id == lead.id and row.kind == "handoff"
    assert row.to_addrs == "dana@example.com"
    assert row.cc_addrs == "priya@example.com, tom@example.com"
    assert row.subject.startswith("New lead for Dana Reyes")
    assert "Budget: $12k" in row.body
    assert f"Message-ID: {receipt.message_id}" in row.raw


def test_no_smtp_and_no_database_refuses_to_drop_mail() -> None:
    with pytest.raises(MailError, match="was not kept"):
        send_mail(None, message())
