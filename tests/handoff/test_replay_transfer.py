"""The live transfer's webhooks, each sent twice exactly as signed: one effect, the same answer."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.handoff_tables import Handoff, Transfer
from tests.handoff.live import make_lead, run_jobs, start_transfer
from tests.test_replay import send_twice


def test_every_live_transfer_webhook_replayed_has_one_effect(client, services, emulator):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    with services.sessions() as s:
        t = s.scalars(select(Transfer).where(Transfer.lead_id == lead_id)).one()
        h = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    rep = {"CallSid": "CArep1", "From": services.settings.caller_id, "To": h.rep_phone}
    send_twice(client, services, f"/twilio/handoff/hold/{t.id}?n=1", {"CallSid": "CAprospect"})
    send_twice(client, services, f"/twilio/handoff/whisper/{h.id}", {**rep, "AnsweredBy": "human"})
    first, _ = send_twice(client, services, f"/twilio/handoff/keys/{h.id}", {**rep, "Digits": "1"})
    assert b"<Conference" in first.get_data()
    send_twice(client, services, f"/twilio/handoff/conference/{t.id}",
               {"CallSid": "CArep1", "StatusCallbackEvent": "participant-join"})
    send_twice(client, services, f"/twilio/handoff/rep-status/{h.id}", {**rep, "CallStatus": "in-progress"})
    send_twice(client, services, f"/twilio/handoff/after/{t.id}", {"CallSid": "CAprospect", "CallStatus": "completed"})
