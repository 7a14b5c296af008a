"""POST /leads/<id>/outcome: leadbot decides with the lead's own flow, whatever the caller claims."""

from __future__ import annotations

from tests.conftest import API_KEY, lead_body

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def new_lead(client) -> str:  # noqa: ANN001
    return client.post("/leads", json=lead_body(service="kitchen remodel"), headers=AUTH).get_json()["id"]


def test_answers_are_decided_by_the_flow(client):
    lead_id = new_lead(client)
    answers = {"need": "yes", "budget": {"min": 5000, "max": 5000, "currency": "USD"},
               "timing": {"kind": "deferred", "days": 365}, "authority": "me"}
    resp = client.post(f"/leads/{lead_id}/outcome", json={"answers": answers, "source": "rasa",
                                                          "outcome": "qualified_ready"}, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["outcome"] == "qualified_not_ready"  # the caller's claim is not trusted
    view = client.get(f"/leads/{lead_id}", headers=AUTH).get_json()
    assert view["status"] == "nurturing" and view["answers"]["authority"] == "me"
    again = client.post(f"/leads/{lead_id}/outcome", json={"answers": answers}, headers=AUTH)
    assert again.status_code == 409


def test_not_a_fit_and_bad_bodies(client):
    lead_id = new_lead(client)
    assert client.post(f"/leads/{lead_id}/outcome", json={"answers": {"need": "no"}}).status_code == 401
    bad = client.post(f"/leads/{lead_id}/outcome", json={"answers": ["no"]}, headers=AUTH)
    assert bad.status_code == 422 and "answers" in bad.get_json()["fields"]
    unknown = client.post(f"/leads/{lead_id}/outcome", json={"answers": {"colour": "red"}}, headers=AUTH)
    assert unknown.status_code == 422 and "answers.colour" in unknown.get_json()["fields"]
    assert client.post("/leads/nope/outcome", json={"answers": {}}, headers=AUTH).status_code == 404
    ok = client.post(f"/leads/{lead_id}/outcome", json={"answers": {"need": "no"}}, headers=AUTH)
    assert ok.get_json()["outcome"] == "not_a_fit" and ok.get_json()["status"] == "disqualified"
