"""The health page: Twilio errors of the last hour, unassigned leads, failing CRM deliveries with Retry."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from rq import SimpleWorker

from bot.runtime import crm
from bot.store import staff
from bot.store.handoff_tables import WaitingLead
from bot.store.source_tables import WebhookDelivery
from bot.store.tables import utcnow
from bot.store.timeline import record
from tests.console.conftest import csrf_of, login, make_user
from tests.handoff.live import make_lead
from tests.sources.conftest import CrmReceiver


@pytest.fixture
def receiver():  # noqa: ANN201
    r = CrmReceiver().start()
    yield r
    r.stop()


def test_twilio_errors_of_the_last_hour_and_unassigned_leads(staff_client, services):
    now = utcnow()
    lead_id = make_lead(services, name="Wanda <Waiting>")
    with services.sessions() as s:
        record(s, lead_id, "call.failed", at=now - timedelta(minutes=5), error="32005")
        record(s, lead_id, "sms.undelivered", at=now - timedelta(minutes=20), error="30003")
        record(s, lead_id, "dial_failed", at=now - timedelta(minutes=70), reason="an old one")
        s.add(WaitingLead(lead_id=lead_id, reason="no rep sells roofing now",
                          since=now - timedelta(minutes=7)))
        s.commit()
    page = staff_client.get("/console/health").get_data(as_text=True)
    twilio = page.split('id="h-twilio"')[1].split("</section>")[0]
    assert "call.failed" in twilio and "Twilio error 32005" in twilio and "sms.undelivered" in twilio
    assert "an old one" not in twilio
    assert re.search(r"Twilio errors, last hour</span><b class=\"bad\">2</b>", page)
    waiting = page.split('id="h-unassigned"')[1].split("</section>")[0]
    assert "Wanda &lt;Waiting&gt;" in waiting and "waiting 7 min: no rep sells roofing now" in waiting


def delivery(services, url: str, status: str, attempts: int) -> str:  # noqa: ANN001
    d = WebhookDelivery(event_id="evt_1", event_type="lead.received", lead_id=make_lead(services), url=url,
                        secret_env="CRM_T_SECRET", body='{"id":"evt_1","type":"lead.received"}',
                        status=status, attempts=attempts, last_status_code=500,
                        last_response="down for <b>x</b>")
    with services.sessions() as s:
        s.add(d)
        s.commit()
        return d.id


def test_failing_deliveries_are_listed_and_an_admin_retries_one(app, staff_client, services, receiver,
                                                                monkeypatch):
    monkeypatch.setenv("CRM_T_SECRET", "whsec-t")
    dead = delivery(services, f"{receiver.url}/a", "failed", 10)
    waiting = delivery(services, f"{receiver.url}/b", "pending", 2)
    crm.webhook_queue(services).enqueue_in(timedelta(minutes=5), crm.DELIVER_JOB, waiting,
                                           job_id=f"webhook-{waiting}")
    page = staff_client.get("/console/health").get_data(as_text=True)
    table = page.split('id="deliveries"')[1].split("</table>")[0]
    dead_row = table.split(f'data-delivery="{dead}"')[1].split("</tr>")[0]
    assert f"{receiver.url}/a" in dead_row and "lead.received" in dead_row and "<td>10</td>" in dead_row
    assert "HTTP 500: down for &lt;b&gt;x&lt;/b&gt;" in dead_row and "gave up" in dead_row
    wait_row = table.split(f'data-delivery="{waiting}"')[1].split("</tr>")[0]
    due = crm.next_retry(services, waiting)
    assert due is not None and due.strftime("%Y-%m-%d %H:%M:%S") in wait_row
    assert 'id="crm-failing" class="bad">2<' in page

    make_user(services, "mo@example.com", "manager")
    manager = app.test_client()
    login(manager, "mo@example.com")
    token = csrf_of(manager.get("/console/health").get_data(as_text=True))
    assert "Retry delivery" not in manager.get("/console/health").get_data(as_text=True)
    retry = f"/console/health/deliveries/{dead}/retry"
    assert manager.post(retry, data={"csrf_token": token}).status_code == 403
    assert staff_client.post(f"/console/health/deliveries/{dead}/retry").status_code == 400  # no CSRF
    assert receiver.requests == []

    resp = staff_client.post(retry, data={"csrf_token": staff_client.csrf})
    assert resp.status_code == 302
    SimpleWorker([crm.webhook_queue(services)], connection=services.redis).work(burst=True)
    assert [r["name"] for r in receiver.requests] == ["a"]
    with services.sessions() as s:
        d = s.get(WebhookDelivery, dead)
        assert (d.status, d.attempts) == ("delivered", 11)
        entry = staff.audit_log(s)[0]
    assert (entry.action, entry.target, entry.actor) == ("crm_delivery_retried", dead, "boss@example.com")
    page = staff_client.get("/console/health").get_data(as_text=True)
    assert f'data-delivery="{dead}"' not in page and f'data-delivery="{waiting}"' in page
    again = staff_client.post(retry, data={"csrf_token": staff_client.csrf})
    assert "already delivered" in staff_client.get(again.headers["Location"]).get_data(as_text=True)


def test_retrying_a_scheduled_delivery_drops_its_scheduled_retry(staff_client, services, receiver,
                                                                  monkeypatch):
    from rq.registry import ScheduledJobRegistry

    monkeypatch.setenv("CRM_T_SECRET", "whsec-t")
    waiting = delivery(services, f"{receiver.url}/b", "pending", 2)
    queue = crm.webhook_queue(services)
    queue.enqueue_in(timedelta(minutes=5), crm.DELIVER_JOB, waiting, job_id=f"webhook-{waiting}")
    staff_client.post(f"/console/health/deliveries/{waiting}/retry", data={"csrf_token": staff_client.csrf})
    assert f"webhook-{waiting}" not in ScheduledJobRegistry(queue=queue).get_job_ids()
    assert queue.get_job_ids() == [f"webhook-{waiting}"]
