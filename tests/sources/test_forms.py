"""POST /sources/<name>: a Zapier-style mapped form from sources.yaml; its validation; GET /leads paging."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.sources.mapping import SourcesConfigError, load_sources
from bot.store.source_tables import LeadSource
from bot.store.tables import Lead
from tests.conftest import API_KEY, lead_body
from tests.sources.conftest import drain_all

SOURCES = """\
sources:
  zapier:
    auth: {bearer_env: ZAPIER_TOKEN}
    id_field: submission_id
    campaign_field: utm.campaign
    fields:
      name: [first_name, last_name]
      phone: phone_number
      email: email
      message: comments
      zip: zip
    defaults: {service: roofing}
    consent: {field: agree_to_calls, text: "I agree to be called about my quote."}
  webflow:
    auth: {hmac_header: X-Form-Signature, secret_env: WEBFLOW_SECRET}
    fields: {name: full_name, phone: tel}
    defaults: {consent: true, channel: sms}
"""
ZAP = {"submission_id": "zap-881", "first_name": "Ada", "last_name": "Lovelace",
       "phone_number": "(512) 555-0177", "email": "ada@example.com", "comments": "Leak over the garage",
       "agree_to_calls": "yes", "utm": {"campaign": "spring-roofs"}}
BEARER = {"Authorization": "Bearer zap-secret"}


@pytest.fixture
def forms(make_app, tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN201
    (tmp_path / "sources.yaml").write_text(SOURCES)
    monkeypatch.setenv("ZAPIER_TOKEN", "zap-secret")
    monkeypatch.setenv("WEBFLOW_SECRET", "wf-secret")
    return make_app()


def count(services, model) -> int:  # noqa: ANN001
    with services.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_zapier_style_json_is_mapped_and_called(forms, emulator):
    client, services = forms
    resp = client.post("/sources/zapier", json=ZAP, headers={"Authorization": "Bearer zap-secret"})
    assert resp.status_code == 202, resp.get_json()
    with services.sessions() as s:
        lead = s.get_one(Lead, resp.get_json()["id"])
        assert (lead.name, lead.phone, lead.service, lead.message, lead.source) == (
            "Ada Lovelace", "+15125550177", "roofing", "Leak over the garage", "zapier")
        assert lead.consent and lead.consent_text == "I agree to be called about my quote."
        src = s.scalars(select(LeadSource)).one()
        assert (src.external_id, src.campaign_id) == ("zap-881", "spring-roofs")
    drain_all(services)
    assert [c["form"]["To"] for c in emulator.of("/Calls.json")] == ["+15125550177"]
    again = client.post("/sources/zapier", json=ZAP, headers={"Authorization": "Bearer zap-secret"})
    assert again.get_json()["id"] == resp.get_json()["id"]
    drain_all(services)
    assert len(emulator.of("/Calls.json")) == 1


def test_form_encoded_post_with_hmac_header(forms, emulator):
    client, services = forms
    raw = "full_name=Grace+Hopper&tel=%2B15125550188"
    sig = hmac.new(b"wf-secret", raw.encode(), hashlib.sha256).hexdigest()
    resp = client.post("/sources/webflow", data=raw, content_type="application/x-www-form-urlencoded",
                       headers={"X-Form-Signature": f"sha256={sig}"})
    assert resp.status_code == 202, resp.get_json()
    drain_all(services)
    assert [m["form"]["To"] for m in emulator.of("/Messages.json")] == ["+15125550188"]
    bad = client.post("/sources/webflow", data=raw, content_type="application/x-www-form-urlencoded",
                      headers={"X-Form-Signature": "sha256=" + "0" * 64})
    assert bad.status_code == 403


def test_missing_consent_is_422_and_wrong_token_403_with_nothing_stored(forms):
    client, services = forms
    no_consent = {k: v for k, v in ZAP.items() if k != "agree_to_calls"}
    resp = client.post("/sources/zapier", json=no_consent, headers={"Authorization": "Bearer zap-secret"})
    assert resp.status_code == 422 and "consent" in resp.get_json()["fields"]
    assert client.post("/sources/zapier", json=ZAP, headers={"Authorization": "Bearer no"}).status_code == 403
    assert client.post("/sources/zapier", json=ZAP).status_code == 403
    assert count(services, Lead) == count(services, LeadSource) == 0


def test_unknown_source_or_unset_secret_is_404(forms, monkeypatch):
    client, _ = forms
    assert client.post("/sources/typeform", json=ZAP).status_code == 404
    monkeypatch.delenv("ZAPIER_TOKEN")
    assert client.post("/sources/zapier", json=ZAP, headers=BEARER).status_code == 404


def test_config_errors_name_file_and_line_all_at_once(tmp_path: Path):
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  zap:\n    auth: {bearer: X}\n    fields:\n      nam: first\n"
                    "      phone: [1]\n    colour: red\n")
    with pytest.raises(SourcesConfigError) as err:
        load_sources(path)
    lines = str(err.value).splitlines()
    assert f"{path}:3: sources.zap.auth: must be" in lines[1]
    assert any(line.startswith(f"{path}:4: sources.zap.fields: fields.nam: not a lead") for line in lines)
    assert any(line.startswith(f"{path}:4: sources.zap.fields: fields.phone: must be") for line in lines)
    assert lines[0].startswith(f"{path}:7: sources.zap.colour: unknown key")


def test_broken_sources_file_stops_the_app(make_app, tmp_path: Path):
    (tmp_path / "sources.yaml").write_text("sources:\n  zap: [\n")
    with pytest.raises(SourcesConfigError, match=r"sources.yaml:\d+: invalid YAML"):
        make_app()


def test_get_leads_pages_and_filters(forms):
    client, services = forms
    auth = {"Authorization": f"Bearer {API_KEY}"}
    ids = [client.post("/leads", json=lead_body(phone=f"+1 512 555 01{i:02d}", email=f"p{i}@example.com"),
                       headers=auth).get_json()["id"] for i in range(3)]
    ids.append(client.post("/sources/zapier", json=ZAP, headers=BEARER).get_json()["id"])
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/leads", query_string=query, headers=auth)
        assert page.status_code == 200
        seen += [lead["id"] for lead in page.get_json()["leads"]]
        cursor = page.get_json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    zap = client.get("/leads", query_string={"source": "zapier"}, headers=auth).get_json()["leads"]
    assert [lead["id"] for lead in zap] == ids[3:] and zap[0]["sources"][0]["campaign_id"] == "spring-roofs"
    assert client.get("/leads", query_string={"status": "received", "since": "2999-01-01"},
                      headers=auth).get_json()["leads"] == []
    assert client.get("/leads", query_string={"cursor": "garbage!"}, headers=auth).status_code == 400
    assert client.get("/leads", query_string={"status": "sleepy"}, headers=auth).status_code == 400
    assert client.get("/leads").status_code == 401
    assert json.loads(client.get("/leads", headers=auth).data)["next_cursor"] is None


def test_a_broken_edit_keeps_the_last_good_mapping(forms, tmp_path: Path):
    client, _ = forms
    assert client.post("/sources/zapier", json=ZAP, headers=BEARER).status_code == 202
    (tmp_path / "sources.yaml").write_text(SOURCES.replace("      phone: tel", "      phone: [tel"))
    other = {**ZAP, "submission_id": "zap-882", "phone_number": "+1 512 555 0178", "email": "b@example.com"}
    resp = client.post("/sources/zapier", json=other, headers=BEARER)
    assert resp.status_code == 202 and not resp.get_json().get("duplicate")


@pytest.mark.parametrize("changes, zip_code", [
    ({"phone_number": 5125550177, "zip": 78701}, "78701"),  # numbers, as a JSON form builder sends them
    ({"zip": "K1A 0B1"}, None),  # a Canadian postcode: kept in the fields, not a 422
    ({"agree_to_calls": "I agree"}, None),  # the checkbox's label as its value
    ({"agree_to_calls": ["yes"]}, None),  # a one-option checkbox group
])
def test_ordinary_form_values_never_cost_the_lead(forms, changes, zip_code):
    """A 422 to a form connector loses the lead (it is never sent again)."""
    client, services = forms
    resp = client.post("/sources/zapier", json={**ZAP, **changes}, headers=BEARER)
    assert resp.status_code == 202, resp.get_json()
    with services.sessions() as s:
        lead = s.get_one(Lead, resp.get_json()["id"])
    assert (lead.phone, lead.zip, lead.consent) == ("+15125550177", zip_code, True)


def test_a_consent_value_nobody_can_read_is_no_consent(forms):
    client, _ = forms
    resp = client.post("/sources/zapier", json={**ZAP, "agree_to_calls": "I do not agree"}, headers=BEARER)
    assert resp.status_code == 422 and "consent" in json.dumps(resp.get_json())
