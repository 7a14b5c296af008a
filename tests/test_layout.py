"""The rooms' public contract: job paths already queued in Redis still run after the move."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime.queueing import CONTACT_JOB, contact_job_id
from bot.store.tables import Attempt
from tests.conftest import drain, lead_body


def test_a_contact_job_queued_under_the_old_path_still_dials(client, auth, services, emulator):  # noqa: ANN001
    """A job stored before the move names `bot.dispatch.contact`; a worker of this release runs it."""
    assert CONTACT_JOB == "bot.jobs.dispatch.contact"
    lead_id = client.post("/leads", json=lead_body(), headers=auth).get_json()["id"]
    services.queue.empty()  # as if intake had queued it under the old name instead
    services.queue.enqueue("bot.dispatch.contact", lead_id, job_id=contact_job_id(lead_id))
    assert drain(services) == 1
    assert len(emulator.calls) == 1
    with services.sessions() as s:
        attempts = s.scalars(select(Attempt).where(Attempt.lead_id == lead_id)).all()
    assert [a.provider_sid for a in attempts] == list(emulator.calls)
