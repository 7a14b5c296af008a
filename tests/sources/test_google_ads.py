"""POST /sources/google-ads with Google's documented lead form webhook JSON."""

from __future__ import annotations

import copy

from sqlalchemy import func, select

from bot.store.source_tables import LeadSource
from bot.store.tables import Lead
from tests.sources.conftest import drain_all, fixture

DOC = fixture("google_ads_lead.json")["payload"]


def payload(**overrides):  # noqa: ANN003, ANN201
    body = copy.deepcopy(DOC)
    body.update(overrides)
    return body


def count(services, model) -> int:  # noqa: ANN001
    with services.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_documented_test_lead_is_stored_mapped_and_called_when_configured(make_app, emulator):
    client, services = make_app(GOOGLE_ADS_KEY="testkey", GOOGLE_ADS_CALL_TESTS="true")
    resp = client.post("/sources/google-ads", json=payload())
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["test"] is True
    lead_id = resp.get_json()["id"]
    with services.sessions() as s:
        lead = s.get_one(Lead, lead_id)
        assert (lead.name, lead.phone, lead.email, lead.source) == (
            "FirstName LastName", "+16505550123", "test@example.com", "google-ads")
        assert lead.consent and "40000000000" in lead.consent_text
        src = s.scalars(select(LeadSource)).one()
        assert (src.external_id, src.campaign_id, src.form_id, src.adgroup_id, src.ad_id, src.is_test) == (
            DOC["lead_id"], "20000000000", "40000000000", "20000000000", "30000000000", True)
        assert src.fields["POSTAL_CODE"] == "94043" and src.fields["roof_material"] == "Asphalt shingles"
    drain_all(services)
    calls = emulator.of("/Calls.json")
    assert [c["form"]["To"] for c in calls] == ["+16505550123"]


def test_test_leads_are_stored_and_marked_but_not_called_by_default(make_app, emulator):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    resp = client.post("/sources/google-ads", json=payload())
    assert resp.status_code == 200
    drain_all(services)
    assert emulator.of("/Calls.json") == []
    with services.sessions() as s:
        lead = s.get_one(Lead, resp.get_json()["id"])
        assert lead.status == "disqualified" and "test lead" in lead.status_reason


def test_real_lead_is_called_once_even_when_google_delivers_it_again(make_app, emulator):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    first = client.post("/sources/google-ads", json=payload(is_test=False))
    drain_all(services)
    again = client.post("/sources/google-ads", json=payload(is_test=False))
    drain_all(services)
    assert first.status_code == again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["duplicate"] is True
    assert len(emulator.of("/Calls.json")) == 1
    assert count(services, Lead) == count(services, LeadSource) == 1


def test_first_and_last_name_columns_are_joined(make_app):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    cols = [c for c in DOC["user_column_data"] if c["column_id"] != "FULL_NAME"]
    cols += [{"string_value": "Grace", "column_id": "FIRST_NAME"},
             {"string_value": "Hopper", "column_id": "LAST_NAME"}]
    resp = client.post("/sources/google-ads", json=payload(user_column_data=cols, is_test=False))
    assert resp.status_code == 200, resp.get_json()
    with services.sessions() as s:
        assert s.get_one(Lead, resp.get_json()["id"]).name == "Grace Hopper"


def test_wrong_or_missing_key_is_403_and_nothing_is_stored(make_app):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    for body in (payload(google_key="testkeX"), {k: v for k, v in DOC.items() if k != "google_key"}):
        assert client.post("/sources/google-ads", json=body).status_code == 403
    assert count(services, Lead) == count(services, LeadSource) == 0
    assert services.queue.count == 0


def test_bad_phone_is_422_naming_the_field(make_app):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    cols = [c if c["column_id"] != "PHONE_NUMBER" else {**c, "string_value": "12"}
            for c in DOC["user_column_data"]]
    resp = client.post("/sources/google-ads", json=payload(user_column_data=cols))
    assert resp.status_code == 422 and "phone" in resp.get_json()["fields"]
    assert count(services, Lead) == 0


def test_unset_key_hides_the_adapter(make_app):
    client, _ = make_app()
    assert client.post("/sources/google-ads", json=payload()).status_code == 404


def with_columns(**values: str) -> list[dict[str, str]]:
    """The documented columns, with these column ids set (or added)."""
    cols = [c for c in copy.deepcopy(DOC["user_column_data"]) if c["column_id"] not in values]
    return cols + [{"string_value": v, "column_id": k} for k, v in values.items()]


def test_the_forms_zip_code_brings_its_states_calling_hours(make_app, emulator, movable_clock):
    """A New York mobile whose owner lives in Miami (ZIP 33101): at 20:30 Eastern, Florida's 8 p.m.
    rule defers the call; before, only the number's area code counted and it was dialled."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    client, services = make_app(GOOGLE_ADS_KEY="testkey", CALLING_HOURS=None)
    movable_clock.set_now(datetime(2026, 12, 2, 20, 30, tzinfo=ZoneInfo("America/New_York")))
    cols = with_columns(PHONE_NUMBER="+12125550100", POSTAL_CODE="33101", REGION="Florida")
    resp = client.post("/sources/google-ads", json=payload(user_column_data=cols, is_test=False))
    assert resp.status_code == 200, resp.get_json()
    drain_all(services)
    assert emulator.of("/Calls.json") == []
    with services.sessions() as s:
        lead = s.get_one(Lead, resp.get_json()["id"])
    assert (lead.zip, lead.state, lead.status) == ("33101", "FL", "scheduled")
    assert lead.status_reason.startswith("FL:"), lead.status_reason


def test_a_postcode_that_is_not_a_us_zip_stays_in_the_fields_and_keeps_the_lead(make_app):
    client, services = make_app(GOOGLE_ADS_KEY="testkey")
    cols = with_columns(POSTAL_CODE="M5V 2T6", REGION="Ontario")
    resp = client.post("/sources/google-ads", json=payload(user_column_data=cols, is_test=False))
    assert resp.status_code == 200, resp.get_json()
    with services.sessions() as s:
        lead = s.get_one(Lead, resp.get_json()["id"])
        src = s.scalars(select(LeadSource)).one()
    assert (lead.zip, lead.state) == (None, None)
    assert src.fields["POSTAL_CODE"] == "M5V 2T6"
