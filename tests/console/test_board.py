"""The live board and the lead page: leads as they arrive, filters, SLA colour, escaping."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.store.tables import Lead, utcnow
from tests.conftest import drain, lead_body

NASTY = "<script>alert(1)</script> {{7*7}}"


def post_lead(client, auth, **kw) -> str:  # noqa: ANN001
    resp = client.post("/leads", json=lead_body(**kw), headers=auth)
    assert resp.status_code == 202
    return resp.get_json()["id"]


def test_new_lead_appears_on_the_board_rows_with_its_status(staff_client, client, auth):
    assert b"No leads match" in staff_client.get("/console/board/rows").data
    lead_id = post_lead(client, auth, name="Grace Hopper", service="siding", source="google")
    rows = staff_client.get("/console/board/rows").get_data(as_text=True)
    assert f'data-lead="{lead_id}"' in rows and "Grace Hopper" in rows and "received" in rows


def test_user_data_is_shown_literally(staff_client, client, auth, services):
    lead_id = post_lead(client, auth, name=NASTY, source=NASTY, service="{{7*7}}")
    drain(services)
    for path in ("/console/", "/console/board/rows", f"/console/leads/{lead_id}"):
        page = staff_client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}" in page, path


def test_filters_by_status_source_and_service(staff_client, client, auth, services):
    a = post_lead(client, auth, name="Ann", phone="+15125550111", email="ann@example.com", source="google",
                  service="roofing")
    b = post_lead(client, auth, name="Ben", phone="+15125550112", email="ben@example.com", source="facebook",
                  service="siding")
    only = staff_client.get("/console/board/rows?source=facebook").get_data(as_text=True)
    assert b in only and a not in only
    only = staff_client.get("/console/board/rows?service=roofing&status=received").get_data(as_text=True)
    assert a in only and b not in only
    services.extras.pop("console.board", None)  # the filters' choices are kept a minute
    board = staff_client.get("/console/").get_data(as_text=True)
    assert '<option value="facebook"' in board and '<option value="siding"' in board


def test_a_lead_waiting_past_its_first_contact_target_is_marked_late(staff_client, client, auth, services):
    fresh = post_lead(client, auth, name="Fresh", phone="+15125550113")
    old = post_lead(client, auth, name="Stale", phone="+15125550114")
    with services.sessions() as s:
        s.execute(update(Lead).where(Lead.id == old).values(created_at=utcnow() - timedelta(minutes=5)))
        s.commit()
    rows = staff_client.get("/console/board/rows").get_data(as_text=True)
    late_rows = [chunk for chunk in rows.split("<tr")[1:] if 'class="late"' in chunk]
    assert len(late_rows) == 1 and old in late_rows[0] and fresh not in late_rows[0]


def test_lead_page_shows_timeline_with_deltas_consent_and_attempts(staff_client, client, auth, services):
    lead_id = post_lead(client, auth, page_url="https://example.com/quote")
    drain(services)
    page = staff_client.get(f"/console/leads/{lead_id}").get_data(as_text=True)
    assert "Ada Lovelace" in page and "https://example.com/quote" in page
    timeline = page.split('id="timeline"')[1]
    assert timeline.index("received") < timeline.index("queued") < timeline.index("dialing")
    assert ">start<" in timeline and "+" in timeline
    assert staff_client.get("/console/leads/nope").status_code == 404


def test_health_lists_failed_jobs_and_retries_one(staff_client, services):
    from rq.registry import FailedJobRegistry

    job = services.queue.enqueue("builtins.int", "not a number")
    from rq import SimpleWorker

    SimpleWorker([services.queue], connection=services.redis).work(burst=True)
    assert job.id in FailedJobRegistry(queue=services.queue).get_job_ids()
    page = staff_client.get("/console/health").get_data(as_text=True)
    assert "builtins.int" in page and "ValueError" in page
    resp = staff_client.post(f"/console/health/retry/{job.id}", data={"csrf_token": staff_client.csrf})
    assert resp.status_code == 302
    assert job.id not in FailedJobRegistry(queue=services.queue).get_job_ids()
    assert services.queue.get_job_ids() == [job.id]
