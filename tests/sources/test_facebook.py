"""GET/POST /sources/facebook: the handshake, signed leadgen notifications, and the Graph fetch job
against a loopback Graph fake (including its expired-token and rate-limit errors)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json

from sqlalchemy import func, select

from bot.store.source_tables import LeadSource
from bot.store.tables import Lead
from tests.sources.conftest import drain_all, fixture, work

DOC = fixture("facebook_leadgen.json")
SECRET, TOKEN, VERIFY = "app-secret-1", "page-token-1", "verify-me"
ENV = {"FACEBOOK_APP_SECRET": SECRET, "FACEBOOK_PAGE_ACCESS_TOKEN": TOKEN, "FACEBOOK_VERIFY_TOKEN": VERIFY}
EXPIRED = (400, {"error": {"message": "Error validating access token: Session has expired on Friday, "
                                      "09-Jan-26 08:00:00 PST.", "type": "OAuthException", "code": 190,
                           "error_subcode": 463, "fbtrace_id": "A1b2C3"}})
RATE_LIMITED = (400, {"error": {"message": "(#32) Page request limit reached", "type": "OAuthException",
                                "code": 32, "fbtrace_id": "D4e5F6"}})


def post(client, body: dict, secret: str = SECRET):  # noqa: ANN001, ANN201
    raw = json.dumps(body).encode()
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/sources/facebook", data=raw, content_type="application/json",
                       headers={"X-Hub-Signature-256": sig})


def leads(services) -> list[Lead]:  # noqa: ANN001
    with services.sessions() as s:
        return list(s.scalars(select(Lead)))


def test_verification_handshake_echoes_the_challenge(make_app):
    client, _ = make_app(**ENV)
    ok = client.get("/sources/facebook", query_string={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                                       "hub.verify_token": VERIFY})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    bad = client.get("/sources/facebook", query_string={"hub.mode": "subscribe", "hub.challenge": "1",
                                                        "hub.verify_token": "meatyhamhock"})
    assert bad.status_code == 403


def test_documented_notification_is_fetched_from_graph_mapped_and_called(make_app, graph, emulator):
    client, services = make_app(**ENV)
    graph.leads["123123123123"] = DOC["lead"]
    resp = post(client, DOC["notification"])
    assert resp.status_code == 200 and resp.get_json() == {"received": 1}
    assert leads(services) == []  # answered at once: the fetch is a job
    drain_all(services)
    [req] = graph.requests
    assert req["path"] == "/v21.0/123123123123" and req["args"]["access_token"] == TOKEN
    proof = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    assert req["args"]["appsecret_proof"] == proof
    [lead] = leads(services)
    assert (lead.name, lead.email, lead.phone, lead.source) == (
        "Joe Example", "joe@example.com", "+15125550142", "facebook")
    assert lead.consent and "my_checkbox=checked" in lead.consent_text
    with services.sessions() as s:
        src = s.scalars(select(LeadSource)).one()
        assert (src.external_id, src.ad_id, src.form_id, src.adgroup_id) == (
            "123123123123", "12312312312", "12312312312", "12312312312")
        assert src.fields["car_make"] == "Honda" and src.fields["page_id"] == "123123123"
    assert [c["form"]["To"] for c in emulator.of("/Calls.json")] == ["+15125550142"]


def test_redelivered_notification_makes_no_second_lead_or_call(make_app, graph, emulator):
    client, services = make_app(**ENV)
    graph.leads["123123123123"] = DOC["lead"]
    post(client, DOC["notification"])
    drain_all(services)
    post(client, DOC["notification"])
    drain_all(services)
    assert len(leads(services)) == 1 and len(emulator.of("/Calls.json")) == 1


def test_unchecked_disclaimer_means_no_call_but_an_email(make_app, graph, emulator):
    client, services = make_app(**ENV)
    lead = copy.deepcopy(DOC["lead"])
    lead["custom_disclaimer_responses"][0]["is_checked"] = ""
    graph.leads["123123123123"] = lead
    post(client, DOC["notification"])
    drain_all(services)
    [stored] = leads(services)
    assert stored.channel == "email" and not stored.consent
    assert emulator.of("/Calls.json") == []


def test_wrong_signature_is_403_and_nothing_is_queued_or_stored(make_app, graph):
    client, services = make_app(**ENV)
    assert post(client, DOC["notification"], secret="not-the-secret").status_code == 403
    unsigned = client.post("/sources/facebook", json=DOC["notification"])
    assert unsigned.status_code == 403
    assert services.queue.count == 0
    drain_all(services)
    assert graph.requests == [] and leads(services) == []


def test_expired_token_and_rate_limit_are_retried_until_graph_answers(make_app, graph, emulator):
    client, services = make_app(**ENV)
    graph.leads["123123123123"] = DOC["lead"]
    graph.errors = [EXPIRED, RATE_LIMITED]
    post(client, DOC["notification"])
    work(services)
    assert len(graph.requests) == 1 and leads(services) == []  # waiting out its back-off, not lost
    drain_all(services)
    assert len(graph.requests) == 3
    assert len(leads(services)) == 1 and len(emulator.of("/Calls.json")) == 1


def test_unknown_lead_id_fails_at_once_without_retries(make_app, graph):
    from rq.registry import FailedJobRegistry

    client, services = make_app(**ENV)
    post(client, DOC["notification"])  # the fake knows no such lead: Graph error 100
    drain_all(services)
    assert len(graph.requests) == 1
    assert FailedJobRegistry(queue=services.queue).get_job_ids() == ["facebook-lead-123123123123"]


def test_unset_secrets_hide_the_adapter(make_app):
    client, services = make_app()
    assert post(client, DOC["notification"]).status_code == 404
    assert client.get("/sources/facebook", query_string={"hub.mode": "subscribe"}).status_code == 404
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Lead)) == 0


def test_the_forms_zip_code_and_state_reach_the_lead(make_app, graph):
    """Facebook's standard zip_code and state questions feed the calling rules (a ported number
    must not escape its owner's state)."""
    client, services = make_app(**ENV)
    lead = copy.deepcopy(DOC["lead"])
    lead["field_data"] += [{"name": "zip_code", "values": ["33101"]}, {"name": "state", "values": ["fl"]}]
    graph.leads["123123123123"] = lead
    post(client, DOC["notification"])
    drain_all(services)
    [stored] = leads(services)
    assert (stored.zip, stored.state) == ("33101", "FL")


def test_graph_unreachable_never_writes_the_page_token_anywhere(make_app, caplog):
    """requests names the whole URL in a connection error, token and appsecret_proof included: that went
    to the worker's log, RQ's failed registry and the console's health page."""
    from rq.registry import FailedJobRegistry

    from tests.sources.conftest import queues

    client, services = make_app(**ENV, FACEBOOK_GRAPH_BASE_URL="http://127.0.0.1:9/v21.0")
    post(client, DOC["notification"])
    drain_all(services)
    failed = [job for q in queues(services) for job in (q.fetch_job(i) for i in FailedJobRegistry(queue=q)
                                                         .get_job_ids())]
    assert failed, "the fetch should have failed for good after its retries"
    texts = [job.latest_result().exc_string for job in failed] + [caplog.text]
    assert all(TOKEN not in t and "appsecret_proof" not in t for t in texts)
    assert "Graph unreachable" in texts[0]


def test_a_lead_with_a_number_nobody_can_dial_is_fetched_once_and_mailed_to_the_managers(make_app, graph):
    """Refetching will not fix what the prospect typed: it used to be fetched 9 times over a day, then
    wait unseen in RQ's failed registry. Now the managers get what was typed at once."""
    from bot.store.handoff_tables import MailOutbox

    client, services = make_app(**ENV)
    lead = copy.deepcopy(DOC["lead"])
    for item in lead["field_data"]:
        if item["name"] == "phone_number":
            item["values"] = ["555-0142"]
    graph.leads["123123123123"] = lead
    post(client, DOC["notification"])
    drain_all(services)
    assert leads(services) == [] and len(graph.requests) == 1
    with services.sessions() as s:
        [mail] = s.scalars(select(MailOutbox)).all()
    assert mail.subject == "Unusable Facebook lead: Joe Example"
    assert "joe@example.com" in mail.body and "555-0142" in mail.body and "Problem: phone:" in mail.body
