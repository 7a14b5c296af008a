"""Deliver mail over SMTP, or keep it in the outbox table when no SMTP server is configured.

``SMTP_URL`` forms::

    smtp://host:25                        plain (port defaults to 25)
    smtp://user:pass@host:587?starttls    upgrade with STARTTLS (port defaults to 587)
    smtps://user:pass@host                implicit TLS (port defaults to 465)

Percent-encode special characters in the user and password (``@`` is ``%40``).
``?timeout=10`` sets the socket timeout in seconds (default 15).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from bot.store.database import session_scope
from bot.store.handoff_tables import MailOutbox
from handoff.roster import HandoffError

DEFAULT_TIMEOUT = 15.0
_TRUE = {"", "1", "true", "yes", "on"}


class MailError(HandoffError):
    """Mail could not be delivered or stored; the message names the server and recipients."""


class Transport(str, Enum):
    """Where a message went."""

    SMTP = "smtp"
    OUTBOX = "outbox"


@dataclass(frozen=True)
class SmtpConfig:
    """A parsed SMTP_URL."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    implicit_tls: bool = False
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT

    @property
    def display(self) -> str:
        """The server without credentials, for error messages and logs."""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


@dataclass(frozen=True)
class MailReceipt:
    """What happened to one message."""

    transport: Transport
    message_id: str
    recipients: tuple[str, ...]
    outbox_id: str | None = None
    refused: dict[str, Any] = field(default_factory=dict)  # recipients the server rejected


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``smtp://``/``smtps://`` URLs; MailError (password hidden) when malformed."""
    parts = urlsplit(url.strip())
    shown = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.scheme not in ("smtp", "smtps"):
        raise MailError(f"SMTP_URL must start with smtp:// or smtps://, got '{shown}'")
    if not parts.hostname:
        raise MailError(f"SMTP_URL has no host: '{shown}'")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"starttls", "timeout"}
    if unknown:
        raise MailError(f"SMTP_URL {shown}: unknown option(s) {', '.join(sorted(unknown))}")
    implicit = parts.scheme == "smtps"
    starttls = "starttls" in query and query["starttls"].lower() in _TRUE
    if implicit and starttls:
        raise MailError(f"SMTP_URL {shown}: smtps:// is already TLS, drop ?starttls")
    try:
        port = parts.port or (465 if implicit else 587 if starttls else 25)
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise MailError(f"SMTP_URL {shown}: {exc}") from exc
    return SmtpConfig(parts.hostname, port, unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password is not None else None,
                      implicit, starttls, timeout)


def recipients(msg: EmailMessage) -> tuple[str, ...]:
    """Every address in To, Cc and Bcc."""
    fields = [v for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]
    return tuple(addr for _name, addr in getaddresses(fields) if addr)


def send_mail(settings_or_url: Any, msg: EmailMessage,
              session_factory: sessionmaker[Session] | None = None) -> MailReceipt:
    """Send ``msg`` over SMTP when configured, else store it in ``mail_outbox``.

    Args:
        settings_or_url: a Settings (``smtp_url``, ``mail_from``), an SMTP URL, or None for the outbox.
        session_factory: where the outbox lives; required when there is no SMTP URL.
    """
    if isinstance(settings_or_url, str) or settings_or_url is None:
        url, mail_from = settings_or_url, None
    else:
        url, mail_from = settings_or_url.smtp_url, settings_or_url.mail_from
    _complete(msg, mail_from)
    to = recipients(msg)
    if not to:
        raise MailError(f"message '{msg['Subject']}' has no recipients")
    if url:
        return _send_smtp(parse_smtp_url(url), msg, to)
    if session_factory is None:
        raise MailError(f"no SMTP_URL and no database for the outbox; message '{msg['Subject']}' to "
                        f"{', '.join(to)} was not kept")
    return _store(session_factory, msg, to)


def _complete(msg: EmailMessage, mail_from: str | None) -> None:
    """Fill From, Date and Message-ID when the builder left them out."""
    if not msg["From"]:
        if not mail_from:
            raise MailError(f"message '{msg['Subject']}' has no From and no MAIL_FROM is set")
        msg["From"] = mail_from
    if not msg["Date"]:
        msg["Date"] = formatdate(localtime=False)
    if not msg["Message-ID"]:
        msg["Message-ID"] = make_msgid(domain="leadbot")


def _send_smtp(cfg: SmtpConfig, msg: EmailMessage, to: tuple[str, ...]) -> MailReceipt:
    """One SMTP session per message: simple, and nothing stays open between handoffs."""
    context = ssl.create_default_context()
    try:
        if cfg.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with client:
            if cfg.starttls:
                client.starttls(context=context)
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
            refused = client.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"sending '{msg['Subject']}' to {', '.join(to)} via {cfg.display} failed: "
                        f"{exc}") from exc
    return MailReceipt(Transport.SMTP, str(msg["Message-ID"]), to, refused=dict(refused))


def _store(factory: sessionmaker[Session], msg: EmailMessage, to: tuple[str, ...]) -> MailReceipt:
    """Keep the message so the simulator and console can show it."""
    body_part = msg.get_body(preferencelist=("plain",))
    body = body_part.get_content() if isinstance(body_part, EmailMessage) else ""
    row = MailOutbox(lead_id=msg["X-Leadbot-Lead-Id"], kind=msg["X-Leadbot-Kind"], mail_from=str(msg["From"]),
                     to_addrs=str(msg["To"] or ""), cc_addrs=str(msg["Cc"] or ""),
                     subject=str(msg["Subject"] or ""), body=body, raw=msg.as_string())
    with session_scope(factory) as session:
        session.add(row)
        session.flush()
        outbox_id = row.id
    return MailReceipt(Transport.OUTBOX, str(msg["Message-ID"]), to, outbox_id=outbox_id)
