"""What salespeople and managers are told: handoff texts (under 320 characters) and their backup emails.

Only plain ASCII punctuation is added here so a text of plain names stays in the GSM-7
alphabet (two SMS segments at most).
"""

from __future__ import annotations

import email.policy
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import phonenumbers

from bot.flows.safetext import xml_safe
from handoff.roster import Manager, Rep
from handoff.shifts import as_utc

SMS_LIMIT = 320
NAME_MAX = 32
FIRST_NAME_MAX = 15
SERVICE_MAX = 30
REASON_MAX = 50
LINK_MAX = 100  # a rep's signed link is ~90 characters; longer links stay out of texts (email has them)
ANSWER_LINE_MAX = 60
ACK_PROMPT = "Reply 1 when you've called"
TALKING_NOW = "Live transfer - you are talking with them now"


class LeadLike(Protocol):
    """What notifications read from a lead (bot.store.tables.Lead fits)."""

    name: str
    phone: str
    service: str | None


def clean(value: object, limit: int) -> str:
    """One line of at most ``limit`` characters: whitespace collapsed, '...' marking a cut."""
    text = re.sub(r"\s+", " ", xml_safe(str(value if value is not None else ""))).strip()
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)].rstrip() + "..." if limit > 3 else text[:limit]


def e164(phone: str, region: str = "US") -> str:
    """The number as +E.164 so phones offer tap-to-call; the input unchanged if it does not parse."""
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return clean(phone, 20)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_elapsed(seconds: float) -> str:
    """Short elapsed time: 45s, 3m 12s, 2h 05m, 3d 4h."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 1000 * 86400:
        return ">999d"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def elapsed(since: datetime, now: datetime) -> str:
    """Time from ``since`` to ``now`` (naive values are UTC)."""
    return format_elapsed((as_utc(now) - as_utc(since)).total_seconds())


def label(key: str) -> str:
    """An answer key as a human label: ``roof_age`` -> ``Roof age``."""
    words = re.sub(r"[_\-]+", " ", str(key)).strip()
    return words[:1].upper() + words[1:]


def answer_lines(answers: Mapping[str, Any] | None, limit: int = ANSWER_LINE_MAX) -> list[str]:
    """One ``Label: value`` line per answer, each at most ``limit`` characters."""
    return [clean(f"{label(k)}: {v}", limit) for k, v in (answers or {}).items() if v not in (None, "")]


def hung_up_reason(call_seconds: float) -> str:
    """The reason line for a prospect who hung up before the transfer connected."""
    s = max(int(call_seconds), 0)
    return f"Prospect hung up at {s // 60:02d}:{s % 60:02d}"


def reassigned_reason(from_rep: Rep, sla_seconds: int) -> str:
    """The reason line on a handoff taken from a rep who did not acknowledge in time."""
    return f"Reassigned: {from_rep.name} did not reply in {_minutes(sla_seconds)}"


def _minutes(seconds: int) -> str:
    """An SLA in words: 5 min, 90s."""
    return f"{seconds // 60} min" if seconds % 60 == 0 else format_elapsed(seconds)


def _fit(head: list[str], body: list[str], tail: list[str], limit: int = SMS_LIMIT) -> str:
    """Join head, as many body lines as fit, and tail; '+N more in email' says what was left out."""
    room = limit - len("\n".join(head + tail))
    kept: list[str] = []
    for i, line in enumerate(body):
        rest = len(body) - i - 1
        note = f"+{rest} more in email" if rest else ""
        # Keeping a line also reserves space for the note the following lines may need.
        reserve = len(note) + 1 if note else 0
        if len(line) + 1 + reserve <= room:
            kept.append(line)
            room -= len(line) + 1
            continue
        if room - 1 - reserve >= 20:  # a shortened answer is still worth reading
            kept.append(clean(line, room - 1 - reserve))
            kept += [note] if note else []
        elif room >= len(f"+{rest + 1} more in email") + 1:
            kept.append(f"+{rest + 1} more in email")
        break
    text = "\n".join(head + kept + tail)
    # Never raise on the handoff path: the caps above keep this from cutting, but the limit is hard.
    return text[:limit]


def handoff_sms_text(lead: LeadLike, answers: Mapping[str, Any] | None, rep: Rep, submitted_at: datetime,
                     link: str, now: datetime, reason: str | None = None) -> str:
    """The handoff text: who to call, what they want, how long they have waited, how to acknowledge."""
    head = [clean(reason, REASON_MAX)] if reason else []
    first = clean(rep.name.split(" ")[0], FIRST_NAME_MAX)
    head.append(f"New lead for {first}: {clean(lead.name, NAME_MAX) or 'Unknown'} {e164(lead.phone)}")
    service = clean(lead.service or "General inquiry", SERVICE_MAX)
    head.append(f"{service} - form sent {elapsed(submitted_at, now)} ago")
    tail = [link] if link and len(link) <= LINK_MAX else []
    tail.append(ACK_PROMPT)
    return _fit(head, answer_lines(answers), tail)


def accepted_sms_text(lead: LeadLike, answers: Mapping[str, Any] | None, rep: Rep, submitted_at: datetime,
                      link: str, now: datetime) -> str:
    """The handoff text after a rep accepted the live transfer: the same facts, and no reply needed."""
    service = clean(lead.service or "General inquiry", SERVICE_MAX)
    head = [f"{TALKING_NOW}: {clean(lead.name, NAME_MAX) or 'Unknown'} {e164(lead.phone)}",
            f"{service} - form sent {elapsed(submitted_at, now)} ago"]
    return _fit(head, answer_lines(answers), [link] if link and len(link) <= LINK_MAX else [])


def reminder_sms_text(lead: LeadLike, rep: Rep, offered_at: datetime, due_at: datetime, link: str,
                      now: datetime) -> str:
    """The nudge sent before the SLA runs out."""
    left = (as_utc(due_at) - as_utc(now)).total_seconds()
    clock = f"{format_elapsed(left)} left before your manager is told" if left > 0 \
        else "Your manager has been told"
    lines = [f"Reminder: {clean(lead.name, NAME_MAX) or 'Unknown'} {e164(lead.phone)} "
             f"({clean(lead.service or 'lead', SERVICE_MAX)}) handed to you {elapsed(offered_at, now)} ago",
             clock + "."]
    if link and len(link) <= LINK_MAX:
        lines.append(link)
    lines.append(ACK_PROMPT)
    return "\n".join(lines)[:SMS_LIMIT]


def reassigned_sms_text(lead: LeadLike, to_rep: Rep, sla_seconds: int) -> str:
    """Told to the rep who lost the lead: no reply in time, someone else has it, no need to call."""
    return (f"{clean(lead.name, NAME_MAX) or 'Your lead'} ({clean(lead.service or 'lead', SERVICE_MAX)}) "
            f"was reassigned to {clean(to_rep.name, NAME_MAX)}: no reply within {_minutes(sla_seconds)}. "
            "No need to call.")[:SMS_LIMIT]


def spoken_time(at: datetime, tz: str | None, now: datetime) -> str:
    """A callback time as a person says it, in the listener's zone: '9 AM tomorrow', '2:30 PM Monday'."""
    zone = ZoneInfo(tz) if tz else ZoneInfo("UTC")
    local, today = as_utc(at).astimezone(zone), as_utc(now).astimezone(zone).date()
    hour = local.strftime("%I").lstrip("0")
    clock = f"{hour} {local:%p}" if local.minute == 0 else f"{hour}:{local:%M} {local:%p}"
    if local.date() == today:
        return f"{clock} today"
    if local.date() == today + timedelta(days=1):
        return f"{clock} tomorrow"
    if local.date() < today + timedelta(days=7):
        return f"{clock} {local:%A}"
    return f"{clock} on {local:%B} {local.day}"


def _deadline(due_at: datetime, rep: Rep) -> str:
    """The SLA deadline on the rep's own clock (UTC when the rep has no hours)."""
    zone = rep.hours.zone if rep.hours else ZoneInfo("UTC")
    return as_utc(due_at).astimezone(zone).strftime("%I:%M %p %Z").lstrip("0")


# Python 3.11 folds a long Subject containing "(...)" right after the colon, and readers then
# see a leading space; RFC 5322 allows 998-character lines, so fold only past that.
_MAIL_POLICY = email.policy.default.clone(max_line_length=998)


def _message(mail_from: str, to: list[str], cc: list[str], subject: str, body: str,
             lead_id: str | None, kind: str) -> EmailMessage:
    """A plain-text message tagged with the lead and kind, so the outbox can be filtered."""
    msg = EmailMessage(policy=_MAIL_POLICY)
    msg["From"] = mail_from
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = clean(subject, 200)
    if lead_id:
        msg["X-Leadbot-Lead-Id"] = str(lead_id)
    msg["X-Leadbot-Kind"] = kind
    msg.set_content(body)
    return msg


def _lead_block(lead: LeadLike, answers: Mapping[str, Any] | None, submitted_at: datetime,
                now: datetime) -> list[str]:
    """Every fact about the prospect, untruncated."""
    lines = [f"Prospect:  {lead.name}", f"Phone:     {e164(lead.phone)}"]
    if getattr(lead, "email", None):
        lines.append(f"Email:     {lead.email}")  # type: ignore[attr-defined]
    lines.append(f"Service:   {lead.service or 'General inquiry'}")
    lines.append(f"Submitted: {as_utc(submitted_at):%Y-%m-%d %H:%M UTC} ({elapsed(submitted_at, now)} ago)")
    if getattr(lead, "message", None):
        lines.append(f"Message:   {lead.message}")  # type: ignore[attr-defined]
    if answers:
        lines += ["", "Answers:"] + [f"  {label(k)}: {v}" for k, v in answers.items()]
    return lines


def handoff_email(lead: LeadLike, answers: Mapping[str, Any] | None, rep: Rep, managers: Sequence[Manager],
                  submitted_at: datetime, link: str, now: datetime, due_at: datetime, mail_from: str,
                  reason: str | None = None) -> EmailMessage:
    """The backup of the handoff text: to the rep, managers in Cc, full answers and the SLA deadline."""
    # Rounded up: mailed a few milliseconds after the clock started, 299.99 s still reads "5 min".
    sla = _minutes(math.ceil((as_utc(due_at) - as_utc(now)).total_seconds()))
    deadline = _deadline(due_at, rep)
    body = ([reason, ""] if reason else []) + [
        f"{rep.name}, a qualified lead is waiting for your call.", "",
        *_lead_block(lead, answers, submitted_at, now), "",
        f"Response timer: call the prospect and reply 1 to the text by {deadline} ({sla} from now).",
        "If it is not acknowledged by then, your manager is told and the lead may be reassigned.",
        "", f"Lead: {link}", "",
        "Copied: " + (", ".join(m.name for m in managers) or "no managers"),
    ]
    subject = f"New lead for {rep.name}: {lead.name} ({lead.service or 'lead'}) - reply by {deadline}"
    return _message(mail_from, [rep.email], [m.email for m in managers], subject, "\n".join(body),
                    getattr(lead, "id", None), "handoff")


def accepted_email(lead: LeadLike, answers: Mapping[str, Any] | None, rep: Rep, managers: Sequence[Manager],
                   submitted_at: datetime, link: str, now: datetime, mail_from: str) -> EmailMessage:
    """The record of a live transfer the rep accepted: to the rep, managers in Cc, every answer."""
    body = [f"{rep.name} accepted the live transfer at {as_utc(now):%H:%M UTC} and is talking with the "
            "prospect now. This is the record of who they are and what they told us.", "",
            *_lead_block(lead, answers, submitted_at, now), "", f"Lead: {link}", "",
            "Copied: " + (", ".join(m.name for m in managers) or "no managers")]
    subject = f"Live transfer to {rep.name}: {lead.name} ({lead.service or 'lead'})"
    return _message(mail_from, [rep.email], [m.email for m in managers], subject, "\n".join(body),
                    getattr(lead, "id", None), "handoff")


def escalation_email(lead: LeadLike, rep: Rep, managers: Sequence[Manager], offered_at: datetime,
                     due_at: datetime, now: datetime, link: str, mail_from: str,
                     next_rep: Rep | None = None) -> EmailMessage:
    """Tell the managers (rep in Cc) that ``rep`` missed the SLA, and what happens next."""
    sla = _minutes(int((as_utc(due_at) - as_utc(offered_at)).total_seconds()))
    next_step = (f"The lead has been reassigned to {next_rep.name} ({next_rep.phone})." if next_rep
                 else "Nobody else is available: please call the prospect yourself.")
    body = [
        f"{rep.name} ({rep.phone}) did not acknowledge this lead within the {sla} SLA.",
        f"Handed off {as_utc(offered_at):%Y-%m-%d %H:%M UTC}, due {_deadline(due_at, rep)}, "
        f"now {elapsed(offered_at, now)} without a reply.", "", next_step, "",
        *_lead_block(lead, None, getattr(lead, "created_at", None) or offered_at, now), "",
        f"Lead: {link}",
    ]
    subject = f"SLA missed: {rep.name} did not acknowledge {lead.name} within {sla}"
    return _message(mail_from, [m.email for m in managers], [rep.email], subject, "\n".join(body),
                    getattr(lead, "id", None), "escalation")


def unassigned_email(lead: LeadLike, answers: Mapping[str, Any] | None, managers: Sequence[Manager],
                     reason: str, link: str, now: datetime, mail_from: str) -> EmailMessage:
    """Tell the managers that no salesperson could be matched, so someone calls the prospect."""
    body = [f"No salesperson could take this qualified lead: {reason}.", "Please call the prospect yourself "
            "or fix the roster (services, shifts, active flags).", "",
            *_lead_block(lead, answers, getattr(lead, "created_at", None) or now, now), "", f"Lead: {link}"]
    subject = f"Unassigned lead: {lead.name} ({lead.service or 'lead'}) - nobody available"
    return _message(mail_from, [m.email for m in managers], [], subject, "\n".join(body),
                    getattr(lead, "id", None), "unassigned")


def unreachable_email(lead: LeadLike, answers: Mapping[str, Any] | None, managers: Sequence[Manager],
                      reason: str, link: str, now: datetime, mail_from: str,
                      headline: str = "the call failed",
                      advice: str = ("Check the number with the lead source, "
                                     "or reach the prospect another way."),
                      ) -> EmailMessage:
    """Tell the managers that leadbot cannot reach a lead at all, so a person follows it up."""
    body = [f"leadbot could not reach this lead and has stopped trying: {reason}.", advice, "",
            *_lead_block(lead, answers, getattr(lead, "created_at", None) or now, now), "", f"Lead: {link}"]
    subject = f"Unreachable lead: {lead.name} ({lead.service or 'lead'}) - {headline}"
    return _message(mail_from, [m.email for m in managers], [], subject, "\n".join(body),
                    getattr(lead, "id", None), "unreachable")


def unassigned_sms_text(lead: LeadLike, reason: str, link: str, now: datetime) -> str:
    """Told to managers with a phone: a qualified lead nobody can take now, and why."""
    waited = elapsed(getattr(lead, "created_at", None) or now, now)
    lines = [f"Unassigned lead: {clean(lead.name, NAME_MAX) or 'Unknown'} {e164(lead.phone)} "
             f"({clean(lead.service or 'lead', SERVICE_MAX)}), form sent {waited} ago",
             clean(reason, 120) + ".", "Please call them or free a rep; details by email."]
    if link and len(link) <= LINK_MAX:
        lines.append(link)
    return "\n".join(lines)[:SMS_LIMIT]
