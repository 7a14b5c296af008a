"""Status callbacks: idempotent, and a call's state only ever moves forward."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from sqlalchemy import update

from bot.channels import cadence, touchsend
from bot.store.tables import Attempt, Lead, LeadStatus, utcnow
from bot.store.timeline import record
from bot.twilio.signature import twilio_signed

bp = Blueprint("status", __name__, url_prefix="/twilio/status")

# Twilio's call lifecycle; terminal states share the top rank so none overwrites another.
CALL_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3,
             "completed": 4, "busy": 4, "no-answer": 4, "failed": 4, "canceled": 4}
SMS_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4,
            "failed": 4, "received": 4, "read": 5}
# A call that ends without a conversation leaves the lead here.
UNREACHED = {"busy": LeadStatus.NO_ANSWER, "no-answer": LeadStatus.NO_ANSWER, "canceled": LeadStatus.NO_ANSWER,
             "failed": LeadStatus.FAILED}


def advance(attempt_id: str, new: str, ranks: dict[str, int], prefix: str, extra: dict) -> bool:
    """Move the attempt to `new` only if it is later than what we have; record it once."""
    svc = current_app.extensions["leadbot"]
    rank = ranks.get(new)
    if rank is None:
        return False
    older = [s for s, r in ranks.items() if r < rank]
    with svc.sessions() as s:
        # The conditional UPDATE is the idempotency guard: duplicates and stale callbacks match no row.
        res = s.execute(update(Attempt).where(
            Attempt.id == attempt_id, (Attempt.call_status.is_(None)) | (Attempt.call_status.in_(older)),
        ).values(call_status=new, updated_at=utcnow()))
        if res.rowcount != 1:
            s.rollback()
            return False
        attempt = s.get(Attempt, attempt_id)
        data = {k: v for k, v in extra.items() if v}
        record(s, attempt.lead_id, f"{prefix}.{new}", sid=request.form.get("CallSid") or request.form.get(
            "MessageSid"), **data)
        if prefix == "call" and new in UNREACHED:
            s.execute(update(Lead).where(Lead.id == attempt.lead_id, Lead.status == LeadStatus.CONTACTING.value)
                      .values(status=UNREACHED[new].value, status_reason=f"call {new}"))
        if prefix == "sms" and new in ("undelivered", "failed"):
            s.execute(update(Lead).where(Lead.id == attempt.lead_id, Lead.status == LeadStatus.CONTACTING.value)
                      .values(status=LeadStatus.FAILED.value, status_reason=f"sms {new}"))
        s.commit()
    return True


@bp.post("/call/<attempt_id>")
@twilio_signed
def call_status(attempt_id: str):
    """Outbound call progress from Twilio."""
    f = request.form
    status = f.get("CallStatus", "")
    extra = {"duration": f.get("CallDuration"), "answered_by": f.get("AnsweredBy"), "error": f.get("ErrorCode")}
    if advance(attempt_id, status, CALL_RANK, "call", extra):
        if CALL_RANK.get(status) == 4:  # once per call: what a missed or cut-off call plans next
            cadence.call_ended(current_app.extensions["leadbot"], attempt_id, status)
    return ("", 204)


@bp.post("/sms/<attempt_id>")
@twilio_signed
def sms_status(attempt_id: str):
    """Outbound SMS delivery progress from Twilio."""
    f = request.form
    status = f.get("MessageStatus", "")
    if advance(attempt_id, status, SMS_RANK, "sms", {"error": f.get("ErrorCode")}) and status in (
            "undelivered", "failed"):
        touchsend.text_failed(current_app.extensions["leadbot"], attempt_id, f.get("ErrorCode"))
    return ("", 204)
