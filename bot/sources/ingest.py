"""One path in for every adapter: validate, dedupe by platform id, create_lead, record the source, dial."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rq import Queue
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.channels.cadence import fresh_intent
from bot.runtime import crm
from bot.runtime.queueing import enqueue_contact
from bot.runtime.services import Services
from bot.store import leads as lead_service
from bot.store.leads import LeadIn, insert_event
from bot.store.prepared import raw_session
from bot.store.source_tables import LeadSource
from bot.store.tables import Lead, LeadStatus

SOURCE_ADDED = "source_added"  # timeline: a later submission of the same person, from this source


@dataclass
class Submission:
    """A lead as one source delivered it, already mapped to the intake contract's field names."""

    source: str
    data: dict[str, Any]
    external_id: str | None = None  # the platform's own lead id
    campaign_id: str | None = None
    adgroup_id: str | None = None
    ad_id: str | None = None
    form_id: str | None = None
    is_test: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # everything the platform sent, for the timeline
    evidence: dict[str, Any] = field(default_factory=dict)  # consent evidence: ip, user_agent


@dataclass
class Ingested:
    """What happened to a submission."""

    lead_id: str
    status: str
    created: bool
    redelivery: bool = False  # the platform sent this lead id before


def validate(svc: Services, sub: Submission) -> LeadIn:
    """The intake contract's validation; raises pydantic's ValidationError naming each bad field."""
    data = {**sub.data, "source": sub.source}
    return LeadIn.model_validate(data, context={"region": svc.settings.default_region})


def ingest(svc: Services, sub: Submission, lead_in: LeadIn | None = None, *, dial: bool = True,
           queue: Queue | None = None) -> Ingested:
    """Create (or find) the lead for a submission and start contact exactly once.

    A re-delivered platform lead id returns the lead it made before. The same person from another
    source within the dedupe window is the earlier lead: this source and its fields join its
    timeline, its channel and consent evidence stay, and no second call is placed.
    """
    lead_in = lead_in or validate(svc, sub)
    if sub.external_id and (seen := _seen(svc, sub)) is not None:
        return Ingested(seen[0], seen[1], created=False, redelivery=True)
    key = f"{sub.source}:{sub.external_id}"[:255] if sub.external_id else None
    with raw_session(svc.engine) as conn:
        lead_id, status, created, _ = lead_service.create_lead(
            conn, lead_in, sub.evidence, key, svc.settings.dedupe_window_seconds, svc.writer)
    with svc.sessions() as s:
        s.add(LeadSource(lead_id=lead_id, source=sub.source, external_id=sub.external_id,
                         campaign_id=sub.campaign_id, adgroup_id=sub.adgroup_id, ad_id=sub.ad_id,
                         form_id=sub.form_id, is_test=sub.is_test, fields=sub.fields))
        if not created:
            insert_event(s.connection(), lead_id, SOURCE_ADDED, source=sub.source,
                         external_id=sub.external_id, campaign_id=sub.campaign_id, form_id=sub.form_id,
                         fields=sub.fields)
        try:
            s.commit()
        except IntegrityError:  # a concurrent re-delivery of the same platform lead id got here first
            s.rollback()
            return Ingested(lead_id, status, created=False, redelivery=True)
        test = sub.is_test and not svc.settings.google_ads_call_tests
        if created and status == LeadStatus.RECEIVED.value and (test or not dial):
            reason = ("test lead: stored, not called (GOOGLE_ADS_CALL_TESTS=true calls test leads)"
                      if test else "imported without contact")
            s.execute(update(Lead).where(Lead.id == lead_id, Lead.status == LeadStatus.RECEIVED.value)
                      .values(status=LeadStatus.DISQUALIFIED.value, status_reason=reason))
            s.commit()
            status = LeadStatus.DISQUALIFIED.value
    if not created:
        # As POST /leads: a new submission from a lead we could not reach (or nurture) is fresh intent.
        status = fresh_intent(svc, lead_id, status, key)
    if created and status == LeadStatus.RECEIVED.value:
        if queue is None:
            # Else the sweeper dispatches it.
            enqueue_contact(svc.queue, lead_id, skip_while_down=True, channel=lead_in.channel)
        else:
            enqueue_contact(queue, lead_id, channel=lead_in.channel)
    if created:
        crm.emit_committed(svc, lead_id, "lead.received")
    return Ingested(lead_id, status, created)


def _seen(svc: Services, sub: Submission) -> tuple[str, str] | None:
    """(lead id, status) of the lead this platform lead id made before, if any."""
    with svc.sessions() as s:
        row = s.execute(select(LeadSource.lead_id, Lead.status).join(Lead, Lead.id == LeadSource.lead_id)
                        .where(LeadSource.source == sub.source, LeadSource.external_id == sub.external_id)
                        ).first()
    return (row[0], row[1]) if row else None
