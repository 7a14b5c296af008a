"""One person from three sources within the dedupe window is one lead, called once."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.store.source_tables import LeadSource
from bot.store.tables import Event, Lead
from tests.conftest import API_KEY, lead_body
from tests.sources.conftest import drain_all, fixture
from tests.sources.test_forms import SOURCES, ZAP

GOOGLE = fixture("google_ads_lead.json")["payload"]


def test_three_sources_for_one_person_give_one_lead_and_one_call(make_app, tmp_path, monkeypatch, emulator):
    (tmp_path / "sources.yaml").write_text(SOURCES)
    monkeypatch.setenv("ZAPIER_TOKEN", "zap-secret")
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    body = lead_body(phone="+1 512 555 0177", channel="sms", email="ada@example.com")
    first = client.post("/leads", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    drain_all(services)
    # Google has her other number but the same email; the Zapier form has her number.
    cols = [{"string_value": "Ada Lovelace", "column_id": "FULL_NAME"},
            {"string_value": "+16505550123", "column_id": "PHONE_NUMBER"},
            {"string_value": "ada@example.com", "column_id": "EMAIL"},
            {"string_value": "slate", "column_id": "roof_material"}]
    google = client.post("/sources/google-ads", json={**GOOGLE, "is_test": False, "user_column_data": cols})
    zap = client.post("/sources/zapier", json=ZAP, headers={"Authorization": "Bearer zap-secret"})
    drain_all(services)
    lead_id = first.get_json()["id"]
    assert google.get_json()["id"] == zap.get_json()["id"] == lead_id
    assert google.get_json()["duplicate"] and zap.get_json()["duplicate"]
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Lead)) == 1
        lead = s.get_one(Lead, lead_id)
        assert (lead.channel, lead.source, lead.consent_text) == ("sms", "web", None)  # the first one's
        sources = s.scalars(select(LeadSource.source).order_by(LeadSource.id)).all()
        assert sources == ["google-ads", "zapier"]
        added = {e.data["source"]: e.data
                 for e in s.scalars(select(Event).where(Event.type == "source_added"))}
        assert added["google-ads"]["fields"]["roof_material"] == "slate"
        assert added["zapier"]["fields"]["comments"] == "Leak over the garage"
    assert len(emulator.of("/Messages.json")) == 1 and emulator.of("/Calls.json") == []
