"""Handoff constants in one place: live-transfer timings, job names and the words reps reply with."""

from __future__ import annotations

# Live transfer: ring each rep this long (Twilio's Timeout) before trying the next one ...
DEFAULT_RING_SECONDS = 20
# ... and dial at most this many reps before the prospect is told when to expect a call.
DEFAULT_TRANSFER_TRIES = 3
# Seconds the rep has to press 1 or 2 after the whisper; silence means voicemail picked up.
WHISPER_KEY_SECONDS = 8
# After the ring timeout, answering-machine detection, the whisper and the key press all take time;
# the watchdog gives up on a rep only when this much more has passed without a verdict.
WATCHDOG_GRACE_SECONDS = 60
# The hold webhook re-enqueues a dial job that has not started after this long (Redis was down).
DIAL_STALE_SECONDS = 10
# Played between hold messages; Twilio's own public hold music.
HOLD_MUSIC_URL = "https://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"
# Acknowledgement medians older than this no longer say anything about a rep's speed.
ACK_HISTORY_DAYS = 30

# Texts from a rep that acknowledge their newest open handoff (compared lower-cased, without punctuation).
ACK_WORDS = frozenset({
    "1", "ok", "okay", "k", "done", "called", "calling", "calling now", "called them", "will call",
    "yes", "y", "yep", "ack", "got it", "on it", "\U0001f44d",
})

# Jobs are enqueued by import path so the web process never imports job code.
DIAL_JOB = "handoff.jobs.dial_rep"
WATCH_JOB = "handoff.jobs.watch_rep"
HANG_UP_JOB = "handoff.jobs.hang_up_rep"
END_HOLD_JOB = "handoff.jobs.end_hold"
SEND_JOB = "handoff.jobs.send_handoff"
EMAIL_JOB = "handoff.jobs.send_handoff_email"
REMIND_JOB = "handoff.jobs.remind"
ESCALATE_JOB = "handoff.jobs.escalate"
UNASSIGNED_JOB = "handoff.jobs.report_unassigned"
UNREACHABLE_JOB = "handoff.jobs.report_unreachable"
ACCEPTED_JOB = "handoff.jobs.send_accepted"
DRAIN_JOB = "handoff.jobs.offer_waiting"
ESCALATION_MAIL_JOB = "handoff.jobs.resend_escalation"
OPTED_OUT_JOB = "handoff.jobs.tell_opted_out"

JOB_IDS = {
    DIAL_JOB: "handoff-dial-{}", WATCH_JOB: "handoff-watch-{}", HANG_UP_JOB: "handoff-hangup-{}",
    END_HOLD_JOB: "transfer-end-{}", SEND_JOB: "handoff-send-{}", EMAIL_JOB: "handoff-email-{}",
    REMIND_JOB: "handoff-remind-{}", ESCALATE_JOB: "handoff-escalate-{}",
    UNASSIGNED_JOB: "handoff-unassigned-{}", ACCEPTED_JOB: "handoff-accepted-{}",
    UNREACHABLE_JOB: "handoff-unreachable-{}",
    DRAIN_JOB: "handoff-waiting-{}", ESCALATION_MAIL_JOB: "handoff-escalation-mail-{}",
    OPTED_OUT_JOB: "handoff-optout-{}",
}
# Handoff.rep_call_sid while the dial request is in flight (claimed, Twilio has not answered yet).
DIALING = "dialing"
