"""The handoff's HTTP surface: signed Twilio webhooks and the authenticated per-rep report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store.handoff_tables import Handoff
from bot.store.tables import Event, utcnow
from tests.conftest import API_KEY, PUBLIC
from tests.handoff.live import ALICE, BOB, make_lead, run_jobs, start_transfer, twilio_post

ROUTES = ["hold", "whisper", "keys", "rep-status", "conference", "after"]


@pytest.mark.parametrize("kind", ROUTES)
def test_forged_or_missing_signatures_are_403_and_change_nothing(client, services, emulator, kind):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    with services.sessions() as s:
        h = s.query(Handoff).one()
        before = s.query(Event).count()
    key = h.id if kind in ("whisper", "keys", "rep-status") else h.conference.removeprefix("leadbot-")
    path = f"/twilio/handoff/{kind}/{key}"
    params = {"CallSid": "CAprospect", "CallStatus": "completed", "Digits": "1", "AnsweredBy": "human",
              "StatusCallbackEvent": "participant-leave"}
    from bot.twilio.signature import sign

    good = sign(services.webhook_token, PUBLIC + path, params)
    for headers, data in (({}, params), ({"X-Twilio-Signature": "bm9wZQ=="}, params),
                          ({"X-Twilio-Signature": good}, {**params, "Digits": "2"})):
        resp = client.post(path, data=data, headers=headers)
        assert resp.status_code == 403 and "X-Twilio-Signature" in resp.get_json()["error"]
    # Signed for another handoff's URL, replayed here.
    other = sign(services.webhook_token, f"{PUBLIC}/twilio/handoff/{kind}/other", params)
    assert client.post(path, data=params, headers={"X-Twilio-Signature": other}).status_code == 403
    with services.sessions() as s:
        assert s.query(Event).count() == before
        assert s.get(Handoff, h.id).status == "open"
    # The genuine request passes.
    assert twilio_post(client, services, PUBLIC + path, params).status_code in (200, 204)


def test_reps_report_needs_the_api_key(client):
    assert client.get("/reports/reps").status_code == 401
    assert client.get("/reports/reps", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_reps_report_figures(client, services):
    lead_id = make_lead(services)
    now = utcnow()
    t0 = now - timedelta(hours=2)

    def handoff(rep: str, phone: str, ack: int | None, *, mode: str = "sms", status: str = "acked",
                offset: int = 0) -> Handoff:
        created = t0 + timedelta(minutes=offset)
        return Handoff(lead_id=lead_id, rep_name=rep, rep_phone=phone, mode=mode, status=status,
                       created_at=created, due_at=created + timedelta(seconds=300),
                       acked_at=created + timedelta(seconds=ack) if ack is not None else None)

    rows = [handoff("Alice Able", ALICE, 30), handoff("Alice Able", ALICE, 90, offset=1),
            handoff("Alice Able", ALICE, 600, offset=2), handoff("Alice Able", ALICE, None, status="missed",
                                                                 offset=3),
            handoff("Bob Baker", BOB, 12, mode="warm_transfer", offset=4)]
    with services.sessions() as s:
        s.add_all(rows)
        s.commit()
    resp = client.get("/reports/reps", headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 200
    body = resp.get_json()
    cards = {c["rep_name"]: c for c in body["reps"]}
    alice, bob = cards["Alice Able"], cards["Bob Baker"]
    counts = [alice[k] for k in ("handoffs", "acknowledged", "within_sla", "late", "missed")]
    assert counts == [4, 3, 2, 1, 1]
    assert alice["median_ack_seconds"] == 90.0 and alice["p90_ack_seconds"] == 498.0
    assert alice["pct_within_sla"] == 50.0
    assert (bob["transfers"], bob["transfers_accepted"], bob["median_ack_seconds"]) == (1, 1, 12.0)
    # Reps on the roster with no handoffs are listed with zeros, so a chart shows everyone.
    assert cards["Cara Cole"]["handoffs"] == 0 and cards["Dan Dorn"]["pct_within_sla"] is None
    assert [c["rep_name"] for c in body["reps"]][:2] == ["Alice Able", "Bob Baker"]

    since = (t0 + timedelta(minutes=3)).isoformat() + "Z"
    later = client.get(f"/reports/reps?since={since}", headers={"Authorization": f"Bearer {API_KEY}"})
    cards = {c["rep_name"]: c for c in later.get_json()["reps"]}
    assert cards["Alice Able"]["handoffs"] == 1 and cards["Bob Baker"]["handoffs"] == 1
    assert later.get_json()["since"] == since.replace("+00:00", "")

    bad = client.get("/reports/reps?since=yesterday", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bad.status_code == 422 and "since" in bad.get_json()["fields"]
