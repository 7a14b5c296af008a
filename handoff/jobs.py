"""RQ job entry points (enqueued by import path); each builds nothing and delegates to plain functions."""

from __future__ import annotations

from bot.runtime.services import current
from handoff import alerts, ladder, legs, waiting, withdrawn


def dial_rep(handoff_id: str) -> str:
    """Dial the rep of one live-transfer try."""
    return legs.dial(current(), handoff_id)


def watch_rep(handoff_id: str) -> str:
    """Give up on a rep whose leg never reached a verdict."""
    return legs.watch(current(), handoff_id)


def hang_up_rep(handoff_id: str) -> str:
    """End a rep's leg that is no longer wanted."""
    return legs.hang_up(current(), handoff_id)


def end_hold(transfer_id: str) -> str:
    """Tell a waiting prospect nobody could take the call now, and when they will be called."""
    return legs.end_hold(current(), transfer_id)


def send_handoff(handoff_id: str) -> str:
    """Text the handoff to the rep and start the SLA ladder."""
    return ladder.send(current(), handoff_id)


def send_accepted(handoff_id: str) -> str:
    """After a rep accepted the live transfer: the handoff text, then the backup email."""
    return alerts.send_accepted(current(), handoff_id)


def send_handoff_email(handoff_id: str) -> str:
    """The backup email to the rep with managers in Cc."""
    return ladder.send_email(current(), handoff_id)


def remind(handoff_id: str) -> str:
    """Half the SLA has passed: remind the rep."""
    return ladder.remind(current(), handoff_id)


def escalate(handoff_id: str) -> str:
    """The SLA has passed: reassign and tell the managers."""
    return ladder.escalate(current(), handoff_id)


def report_unassigned(lead_id: str) -> str:
    """Tell the managers (email, and texts to those with a phone) nobody can take a lead now."""
    return alerts.report_unassigned(current(), lead_id)


def report_unreachable(lead_id: str) -> str:
    """Email the managers about a lead no call or text can reach (an invalid or blocked number)."""
    return alerts.report_unreachable(current(), lead_id)


def offer_waiting(_at: str) -> int:
    """A shift starts: offer the unassigned leads, oldest first, to the reps now on shift."""
    return waiting.drain(current())


def resend_escalation(handoff_id: str) -> str:
    """The managers' SLA-missed email failed when the deadline passed: send it again."""
    return alerts.resend_escalation(current(), handoff_id)


def tell_opted_out(handoff_id: str) -> str:
    """The prospect opted out: tell the rep holding the lead not to contact them."""
    return withdrawn.tell_rep(current(), handoff_id)
