"""CRM webhooks out: a real receiver gets each event once, signed; a failing one still gets it, slows nothing."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.runtime.crm import CrmConfigError, load_subscribers
from bot.store.source_tables import WebhookDelivery
from tests.conftest import API_KEY, lead_body
from tests.sources.conftest import drain_all, promote, verify, work

SECRET_A, SECRET_B = "whsec-a", "whsec-b"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def hooked(make_app, crm_receiver, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """An app with two subscribers: /a takes every event, /b only lead.received and lead.contacted."""
    monkeypatch.setenv("CRM_A_SECRET", SECRET_A)
    monkeypatch.setenv("CRM_B_SECRET", SECRET_B)
    path = tmp_path / "webhooks.yaml"
    path.write_text(f"""subscribers:
  - url: {crm_receiver.url}/a
    events: ["*"]
    secret_env: CRM_A_SECRET
  - url: {crm_receiver.url}/b
    events: [lead.received, lead.contacted]
    secret_env: CRM_B_SECRET
""")
    return make_app(WEBHOOKS_PATH=str(path))


def events(receiver, name: str) -> list[dict]:  # noqa: ANN001
    return [json.loads(r["body"]) for r in receiver.of(name)]


def test_every_event_reaches_each_subscriber_once_signed(hooked, crm_receiver, emulator):
    client, services = hooked
    lead_id = client.post("/leads", json=lead_body(), headers=AUTH).get_json()["id"]
    drain_all(services)
    resp = client.post(f"/leads/{lead_id}/outcome", json={"answers": {}, "outcome": "opt_out"}, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    drain_all(services)
    a, b = events(crm_receiver, "a"), events(crm_receiver, "b")
    assert [e["type"] for e in a] == ["lead.received", "lead.contacted", "lead.opted_out"]
    assert [e["type"] for e in b] == ["lead.received", "lead.contacted"]
    assert len({e["id"] for e in a}) == 3 and all(e["lead"]["id"] == lead_id for e in a + b)
    assert a[0]["lead"]["source"] == "web" and a[2]["lead"]["status"] == "opted_out"
    for name, secret in (("a", SECRET_A), ("b", SECRET_B)):
        for r in crm_receiver.of(name):
            header = r["headers"]["Leadbot-Signature"]
            assert verify(secret, header, r["body"])
            assert abs(int(header.split(",")[0][2:]) - time.time()) < 60
            assert not verify("wrong", header, r["body"])
    with services.sessions() as s:
        assert {d.status for d in s.scalars(select(WebhookDelivery))} == {"delivered"}


def test_a_failing_subscriber_still_gets_the_event_and_slows_nothing(hooked, crm_receiver, emulator):
    client, services = hooked
    crm_receiver.fail[("a", "lead.received")] = 3
    before = time.time()
    client.post("/leads", json=lead_body(), headers=AUTH)
    work(services)  # one pass, no time moved
    assert len(emulator.of("/Calls.json")) == 1  # the call went out at once
    assert [e["type"] for e in events(crm_receiver, "b")] == ["lead.received", "lead.contacted"]
    assert [e["type"] for e in events(crm_receiver, "a")] == ["lead.received", "lead.contacted"]
    report = client.get("/reports/webhook-deliveries", headers=AUTH).get_json()["deliveries"]
    assert [(d["event_type"], d["last_status_code"], d["attempts"]) for d in report] == [
        ("lead.received", 500, 1)]
    due = promote(services)  # the first retry was due 15 s later: back-off, not a busy loop
    assert len(due) == 1 and 14 <= due[0][1] - before <= 30
    work(services)
    due = promote(services)  # lead.received failed again; the next wait is longer
    assert len(due) == 1 and due[0][1] - time.time() > 45
    drain_all(services)
    a = events(crm_receiver, "a")
    received = [e for e in a if e["type"] == "lead.received"]
    assert len(received) == 4 and len({e["id"] for e in received}) == 1  # one event id: receivers dedupe
    assert len(events(crm_receiver, "b")) == 2 and len(emulator.of("/Calls.json")) == 1
    assert client.get("/reports/webhook-deliveries", headers=AUTH).get_json()["deliveries"] == []
    with services.sessions() as s:
        d = s.scalars(select(WebhookDelivery).where(WebhookDelivery.url.endswith("/a"),
                                                    WebhookDelivery.event_type == "lead.received")).one()
        assert (d.status, d.attempts, d.last_status_code) == ("delivered", 4, 200)
        assert [x["code"] for x in d.log] == [500, 500, 500, 200]


def test_a_dead_subscriber_fails_for_good_and_replay_resends(hooked, crm_receiver, emulator, monkeypatch,
                                                             db_url, redis_url, tmp_path, capsys):
    from bot.cli import main

    client, services = hooked
    crm_receiver.fail[("b", "lead.received")] = 10  # one more than the retries
    client.post("/leads", json=lead_body(), headers=AUTH)
    drain_all(services, rounds=30)
    failed = client.get("/reports/webhook-deliveries", query_string={"status": "failed"},
                        headers=AUTH).get_json()
    [dead] = [d for d in failed["deliveries"] if d["event_type"] == "lead.received"]
    assert dead["attempts"] == 10 and dead["last_status_code"] == 500
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "WEBHOOKS_PATH": str(tmp_path / "webhooks.yaml"),
           "LEADBOT_DATA_DIR": str(tmp_path / "var")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["webhooks", "replay", dead["id"]]) == 0
    assert "delivered (HTTP 200, attempt 11)" in capsys.readouterr().out
    assert len([e for e in events(crm_receiver, "b") if e["type"] == "lead.received"]) == 11


def test_subscriber_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "webhooks.yaml"
    path.write_text("subscribers:\n  - url: ftp://x\n    events: [lead.sold]\n    secret_env: NOPE_NOT_SET\n")
    with pytest.raises(CrmConfigError) as err:
        load_subscribers(path, environ={})
    text = str(err.value)
    assert f"{path}:2: subscribers[0].url" in text
    assert f"{path}:3: subscribers[0].events: unknown event" in text
    assert f"{path}:4: subscribers[0].secret_env: NOPE_NOT_SET is not set" in text


def test_a_hanging_subscriber_costs_one_timeout_then_is_held_back(make_app, crm_receiver, stall, tmp_path,
                                                                   monkeypatch, emulator):
    from bot.jobs import webhooks

    monkeypatch.setattr(webhooks, "TIMEOUT", (0.5, 0.5))  # the real 10 s, shortened for the test
    monkeypatch.setenv("CRM_A_SECRET", SECRET_A)
    path = tmp_path / "webhooks.yaml"
    path.write_text(f"subscribers:\n  - url: {crm_receiver.url}/slow\n    events: [lead.received]\n"
                    f"    secret_env: CRM_A_SECRET\n  - url: {crm_receiver.url}/b\n    events: [lead.received]\n"
                    "    secret_env: CRM_A_SECRET\n")
    client, services = make_app(WEBHOOKS_PATH=str(path))
    for n in range(3):
        client.post("/leads", json=lead_body(phone=f"+1 512 555 014{n}", email=f"x{n}@example.com"),
                    headers=AUTH)
    started = time.monotonic()
    work(services)
    took = time.monotonic() - started
    assert len(emulator.of("/Calls.json")) == 3  # contacts go first, whatever the subscribers do
    assert len(crm_receiver.of("b")) == 3
    assert len(crm_receiver.of("slow")) == 1  # one timeout; its other deliveries did not wait
    assert took < 3, took
    with services.sessions() as s:
        slow = s.scalars(select(WebhookDelivery).where(WebhookDelivery.url.endswith("/slow"))).all()
        assert {d.status for d in slow} == {"pending"}  # retried later, not lost
        assert sorted(d.last_error.split(":")[0] for d in slow) == ["ReadTimeout", "held back", "held back"]


def test_sweeper_enqueues_a_delivery_that_redis_lost(hooked, crm_receiver):
    from rq.job import Job

    from bot.jobs.webhooks import LOST_GRACE_S, sweep_lost

    client, services = hooked
    client.post("/leads", json=lead_body(channel="email", consent=False), headers=AUTH)
    with services.sessions() as s:
        deliveries = s.scalars(select(WebhookDelivery)).all()
        for d in deliveries:
            Job.fetch(f"webhook-{d.id}", connection=services.redis).delete()  # Redis lost them
    assert sweep_lost(services) == 0  # too recent: their jobs may just be on their way
    with services.sessions() as s:
        for d in s.scalars(select(WebhookDelivery)):
            d.updated_at -= timedelta(seconds=LOST_GRACE_S + 1)
        s.commit()
    assert sweep_lost(services) == 2
    drain_all(services)
    assert [e["type"] for e in events(crm_receiver, "a")][:1] == ["lead.received"]
    assert [e["type"] for e in events(crm_receiver, "b")][:1] == ["lead.received"]
