"""Timeline event names written by the handoff (data always names the rep and handoff involved)."""

from __future__ import annotations


class HandoffEvent:
    """Every step of a handoff, as it appears in the lead's timeline."""

    MATCHED = "handoff_matched"  # who was picked and why (filters, scores, rotation)
    UNASSIGNED = "handoff_unassigned"  # nobody can take it now: on the unassigned list, managers told
    OFFERED_FROM_LIST = "handoff_from_waiting"  # a rep became available: the waiting lead is offered
    SCHEDULED = "handoff_scheduled"  # nobody on shift: the text goes out when the next shift starts
    TRANSFER_STARTED = "transfer_started"  # prospect put on hold in the conference
    REP_DIALING = "rep_dialing"
    REP_DIAL_FAILED = "rep_dial_failed"
    REP_DECLINED = "rep_declined"  # pressed 2, or hung up during the whisper
    REP_NO_ANSWER = "rep_no_answer"  # busy, no answer, or the watchdog gave up
    REP_VOICEMAIL = "rep_voicemail"  # AMD said machine, or nobody pressed a key
    TRANSFER_ACCEPTED = "transfer_accepted"
    TRANSFER_CONNECTED = "transfer_connected"  # the rep is in the conference with the prospect
    TRANSFER_ENDED = "transfer_ended"
    TRANSFER_FAILED = "transfer_failed"  # nobody accepted after the allowed tries
    PROSPECT_HUNG_UP = "prospect_hung_up"
    PROSPECT_TOLD = "prospect_told"  # the prospect heard when they will be called back
    REP_LEG_CANCELLED = "rep_leg_cancelled"
    SMS_SENT = "handoff_sms_sent"
    SMS_FAILED = "handoff_sms_failed"
    EMAIL_SENT = "handoff_email_sent"
    EMAIL_FAILED = "handoff_email_failed"
    REMINDER = "handoff_reminder"
    ESCALATED = "handoff_escalated"  # SLA missed; managers emailed
    REASSIGNED = "handoff_reassigned"
    ACKED = "handoff_acked"
    CANCELLED = "handoff_cancelled"  # the lead withdrew (opt-out) before anyone acknowledged
