"""The opt-out record per number: keywords (STOP, START, HELP), the check every send makes, and DNC files."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.flows import answers
from bot.flows.words import tokens
from bot.store.leads import OPT_OUTS, e164, parse_phone
from bot.store.prepared import joined
from bot.store.tables import OptOut, utcnow

# Every outbound touch asks this: a prepared statement, not an ORM get (see bot.store.prepared).
OPTED_OUT = select(OPT_OUTS.c.phone).where(OPT_OUTS.c.phone == bindparam("phone"))
# CTIA's opt-in and help keywords, as the whole message.
OPT_IN_WORDS = frozenset({"start", "unstop", "subscribe", "resume"})
HELP_WORDS = frozenset({"help", "info", "ayuda"})
HELP_TEXT = ("{business}: we call and text about the request you sent us. Reply STOP to opt out of all "
             "calls and texts, START to opt back in. Msg & data rates may apply.")
DNC_COLUMNS = ("phone", "source", "at")


def is_opt_out(text: str | None) -> bool:
    """True for a carrier opt-out keyword (STOP, STOPALL, REVOKE, ...) or a plain "stop texting me"."""
    return answers.is_opt_out(text or "")


def keyword(text: str | None) -> str | None:
    """'stop', 'start' or 'help' when the message is that kind of keyword, else None."""
    if is_opt_out(text):
        return "stop"
    words = " ".join(w for w in tokens(text or "") if w not in ("please", "pls"))
    if words in OPT_IN_WORDS:
        return "start"
    if words in HELP_WORDS:
        return "help"
    return None


def help_text(business: str) -> str:
    """The HELP reply: who we are and how to stop."""
    return HELP_TEXT.format(business=business)


def opted_out(session: Session, phone: str) -> bool:
    """True when the number opted out (the check every send path makes, just before it sends)."""
    return joined(session.connection()).first(OPTED_OUT, {"phone": phone}) is not None


def opt_out(session: Session, phone: str, source: str) -> bool:
    """Record an opt-out (idempotent); True when it is new."""
    if session.get(OptOut, phone) is not None:
        return False
    session.add(OptOut(phone=phone, source=source[:40]))
    session.flush()
    return True


def opt_in(session: Session, phone: str) -> bool:
    """Remove the number's opt-out (START/UNSTOP); True when there was one."""
    row = session.get(OptOut, phone)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


@dataclass
class ImportReport:
    """What `leadbot dnc import` did: numbers added, already there, and rows it could not read."""

    added: int = 0
    present: int = 0
    errors: list[str] = field(default_factory=list)


def import_dnc(session: Session, rows: Iterable[list[str]], region: str, source: str) -> ImportReport:
    """Add every number of a CSV (first column, or a `phone` column) to the opt-outs; caller commits."""
    report, column = ImportReport(), 0
    seen: set[str] = set()
    for n, row in enumerate(rows, 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        lowered = [cell.strip().lower() for cell in row]
        if n == 1 and "phone" in lowered:
            column = lowered.index("phone")
            continue
        raw = row[column] if column < len(row) else ""
        try:
            phone = e164(parse_phone(raw, region))
        except ValueError as exc:
            report.errors.append(f"line {n}: {raw!r}: {exc}")
            continue
        if phone in seen or not opt_out(session, phone, source):
            report.present += 1
        else:
            report.added += 1
        seen.add(phone)
    return report


def export_dnc(session: Session, out: TextIO) -> int:
    """Write every opted-out number as CSV (phone, source, at); returns how many."""
    writer = csv.writer(out)
    writer.writerow(DNC_COLUMNS)
    count = 0
    for row in session.scalars(select(OptOut).order_by(OptOut.phone)):
        writer.writerow([row.phone, row.source, (row.at or utcnow()).isoformat(timespec="seconds") + "Z"])
        count += 1
    return count
