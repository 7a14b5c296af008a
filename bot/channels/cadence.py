"""The unanswered-call cadence: what a no-answer, busy, failed, machine or cut-off call plans next."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels import conversation, touches
from bot.flows.cadence import CADENCE_FILE, Cadence, CadenceBook, default_text, load_cadences
from bot.runtime.services import Services
from bot.store.tables import Attempt, Conversation, Lead, LeadStatus, utcnow
from bot.store.timeline import record
from bot.store.touch_tables import Touch, TouchStatus
from handoff.defaults import UNREACHABLE_JOB
from handoff.scheduling import enqueue_after_commit
from handoff.waiting import ALERT_RETRY

log = logging.getLogger(__name__)

CHASED = {
    LeadStatus.CONTACTING.value,
    LeadStatus.NO_ANSWER.value,
    LeadStatus.IN_CONVERSATION.value,
    LeadStatus.FAILED.value,
}
RULE_OF = {
    "no-answer": "no-answer",
    "canceled": "no-answer",
    "busy": "busy",
    "failed": "failed",
    "machine": "machine",
    "cut-off": "no-answer",
}
FRESH_INTENT = {LeadStatus.NO_ANSWER.value, LeadStatus.NURTURING.value}
CHASE_KINDS = ("retry", "text", "voicemail_text", "fallback", "email")


def book(svc: Services) -> CadenceBook:
    """The cadence file, re-read when it changes; a broken edit keeps the last good version."""
    path = svc.settings.flows_dir / CADENCE_FILE
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1
    cached = svc.extras.get("cadence")
    if cached is not None and cached[0] == mtime:
        return cached[1]
    loaded, errors = load_cadences(path) if mtime != -1 else (None, [])
    if errors:
        log.error("cadence file has errors; keeping the last good one: %s", "; ".join(map(str, errors[:5])))
    fallback = cached[1] if cached else CadenceBook({"default": Cadence("default", (), {})})
    result = loaded or fallback
    svc.extras["cadence"] = (mtime, result)
    return result


def cadence_for(svc: Services, lead: Lead) -> Cadence:
    """The lead's cadence: its flow's (the one routing picks when it never answered), else its team's
    (the team whose reps sell its service, handoff.matching.team_for), else `default`."""
    cadences = book(svc)
    flow_id = lead.flow_id or svc.flows.choose(service=lead.service, source=lead.source)
    if flow_id in cadences.flows or not cadences.teams:
        return cadences.pick(flow_id)
    from handoff.matching import team_for
    from handoff.roster import HandoffError
    from handoff.roster_cache import roster_for

    try:
        team = team_for(roster_for(svc), lead, svc.settings.default_region)
    except HandoffError as exc:  # no roster: the flow's or the default cadence still runs
        log.warning("no team for lead %s (the roster did not load): %s", lead.id, exc)
        team = None
    return cadences.pick(flow_id, team)


def _zone(lead: Lead) -> ZoneInfo:
    names = [z for z in (lead.timezone or "").split(",") if z]
    return ZoneInfo(names[0]) if names else ZoneInfo("America/New_York")


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def call_ended(svc: Services, attempt_id: str, status: str) -> None:
    """A call's final status arrived (once): a call that reached nobody, or was cut off, plans what's next."""
    with svc.sessions() as s:
        attempt = s.get(Attempt, attempt_id)
        lead = s.get(Lead, attempt.lead_id) if attempt else None
        if lead is None or lead.status not in CHASED:
            return
        kind = status
        if status == "completed":
            conv = s.scalar(
                select(Conversation)
                .where(
                    Conversation.lead_id == lead.id,
                    Conversation.open.is_(True),
                    Conversation.channel == "voice",
                )
                .order_by(Conversation.created_at.desc())
                .limit(1)
            )
            if conv is not None:
                cut_off(s, lead, conv)
                kind = "cut-off"
            elif (lead.status_reason or "").startswith("voicemail"):
                return  # planned when the machine was detected (amd.amd_result)
            elif lead.status == LeadStatus.CONTACTING.value:
                kind = "no-answer"  # completed without anyone reaching the flow
            else:
                return
        if kind not in RULE_OF:
            return
        unanswered(svc, s, lead, kind)
        s.commit()


def cut_off(s: Session, lead: Lead, conv: Conversation) -> None:
    """The prospect hung up or the line dropped mid-questions: keep where it stopped, like a missed call."""
    step = (conv.state or {}).get("step")
    conv.open, conv.outcome = False, "cut_off"
    lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"cut off at step '{step}'"
    record(s, lead.id, "cut_off", step=step, channel=conv.channel, conversation=conv.id)


def unanswered(svc: Services, s: Session, lead: Lead, kind: str) -> None:
    """Apply the outcome's rule and plan what comes next in the lead's cadence."""
    cad = cadence_for(svc, lead)
    reach = touches.reach(s, lead.id)
    now = utcnow()
    if reach.started_at is None:
        reach.started_at, reach.cadence = now, cad.name
    reach.calls += 1
    rule = cad.rules.get(RULE_OF[kind])
    if rule is None:
        return
    reach.failed_in_row = reach.failed_in_row + 1 if kind == "failed" else 0
    if rule.to_sms_after and reach.failed_in_row >= rule.to_sms_after and not reach.no_voice:
        reach.no_voice = True
        record(
            s, lead.id, "channel_switched", to="sms", reason=f"{reach.failed_in_row} failed calls in a row"
        )
    if lead.status in (LeadStatus.CONTACTING.value, LeadStatus.FAILED.value):
        lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, lead.status_reason or f"call {kind}"
    if kind == "machine" and rule.text_within is not None and not reach.texted:
        reach.texted = True
        touches.plan(
            svc,
            s,
            lead.id,
            f"r{reach.round}:vm_text",
            "voicemail_text",
            "sms",
            now + rule.text_within,
            body=_text(cad, lead),
        )
    if rule.retry:
        plan_next(svc, s, lead, cad, not_before=now + rule.at_least)


def _text(cad: Cadence, lead: Lead, index: int | None = None) -> str:
    say = (cad.touches[index].say if index is not None else None) or cad.text or default_text()
    return say.render("en", "en", {"lead": conversation.lead_fields(lead)})


def plan_next(svc: Services, s: Session, lead: Lead, cad: Cadence, not_before: datetime) -> None:
    """Plan the texts due before the next call, and that call; the end of the cadence when none is left."""
    reach = touches.reach(s, lead.id)
    start = reach.started_at.replace(tzinfo=UTC)
    zone, i = _zone(lead), reach.next_index
    while i < len(cad.touches):
        touch, due = cad.touches[i], _naive(cad.when(i, start, zone))
        key = f"r{reach.round}:cadence:{i}"
        i += 1
        if touch.channel == "sms":
            if not reach.texted:
                reach.texted = True
                touches.plan(
                    svc,
                    s,
                    lead.id,
                    key,
                    "text",
                    "sms",
                    max(due, utcnow()),
                    body=_text(cad, lead, i - 1),
                    step=str(i - 1),
                )
            continue
        if reach.calls >= cad.max_calls:
            break
        touches.plan(svc, s, lead.id, key, "retry", "call", max(due, not_before), step=str(i - 1))
        reach.next_index = i
        return
    reach.next_index = i
    finished(svc, s, lead, cad)


def finished(svc: Services, s: Session, lead: Lead, cad: Cadence, last_email: bool = True) -> None:
    """No call left in the cadence: the email last (when on file), and the reason on the lead."""
    reach = touches.reach(s, lead.id)
    record(s, lead.id, "cadence_finished", cadence=cad.name, calls=reach.calls)
    lead.status, lead.status_reason = LeadStatus.NO_ANSWER.value, f"no answer after {reach.calls} call(s)"
    # Not a silent ending: the managers hear of it now (handoff.alerts.report_unreachable).
    enqueue_after_commit(s, svc.queue, UNREACHABLE_JOB, lead.id, retry=ALERT_RETRY)
    if last_email and lead.email and cad.email_last is not None:
        body = cad.email_last.render("en", "en", {"lead": conversation.lead_fields(lead)})
        touches.plan(svc, s, lead.id, f"r{reach.round}:email_last", "email", "email", utcnow(), body=body)


def switch_channel(svc: Services, s: Session, lead: Lead, touch: Touch, failed: str) -> None:
    """A number refused a channel for good: send this touch another way now, when one is left."""
    reach = touches.reach(s, lead.id)
    key = f"r{reach.round}:fallback:{touch.id}"
    if failed == "call" and not reach.no_sms:
        body = _text(cadence_for(svc, lead), lead)
        touches.plan(svc, s, lead.id, key, "fallback", "sms", utcnow(), body=body)
    elif failed == "sms" and touch.kind == "text" and not reach.no_voice:
        touches.plan(svc, s, lead.id, key, "retry", "call", utcnow())
    elif lead.email and touch.kind != "email":
        touches.plan(svc, s, lead.id, key, "email", "email", utcnow(), body=touch.body or "")


def stop(s: Session, lead_id: str, reason: str) -> int:
    """An answer, a reply, a handoff or a new submission: the chase and any nurture stop."""
    return touches.cancel(s, lead_id, reason)


def fresh_intent(svc: Services, lead_id: str, status: str, idempotency_key: str | None = None) -> str:
    """A new submission from a lead we could not reach (or nurture): contact it again now, as a fresh lead.

    A replayed request (the same Idempotency-Key) is not a new submission.
    """
    if status not in FRESH_INTENT:
        return status
    from bot.runtime.queueing import enqueue_contact

    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if (
            lead is None
            or lead.status not in FRESH_INTENT
            or (idempotency_key and lead.idempotency_key == idempotency_key)
        ):
            return status
        touches.cancel(s, lead_id, "new submission")
        reach = touches.reach(s, lead_id)
        reach.round += 1
        reach.started_at, reach.calls, reach.next_index, reach.failed_in_row, reach.texted = (
            None,
            0,
            0,
            0,
            False,
        )
        reach.nurture = None
        lead.status, lead.status_reason = LeadStatus.QUEUED.value, "new submission: contacting again"
        lead.contact_due_at = utcnow()  # if Redis is down below, the sweeper sends it once it is back
        record(s, lead_id, "fresh_intent", was=status)
        channel = lead.channel
        s.commit()
    enqueue_contact(svc.queue, lead_id, channel=channel)
    return LeadStatus.QUEUED.value


def pending(s: Session, lead_id: str) -> list[Touch]:
    """The lead's planned touches, soonest first."""
    return list(
        s.scalars(
            select(Touch)
            .where(Touch.lead_id == lead_id, Touch.status == TouchStatus.PLANNED)
            .order_by(Touch.due_at)
        )
    )
