"""Health: queue depth, workers, failed jobs (with retry), Twilio errors, unassigned leads, CRM deliveries.

Other features add a panel with `add_panel(title, provider)`: the provider gets the services and
returns rows ({"label", "detail", "lead_id"?}). Failing CRM deliveries have their own table, with a
Retry button (console/deliveries.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from rq import Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from bot.store import board as board_model
from bot.store.tables import utcnow
from console import deliveries
from console.auth import audit, requires, svc
from handoff.waiting import unassigned_leads

bp = Blueprint("health", __name__)
# REST calls Twilio refused, and the failures Twilio reports back in status callbacks.
TWILIO_ERRORS = ("dial_failed", "dial_retry", "handoff_sms_failed", "rep_dial_failed", "call.failed",
                 "sms.failed", "sms.undelivered")
Provider = Callable[[Any], list[dict[str, Any]]]
PANELS: list[tuple[str, Provider]] = []


def add_panel(title: str, provider: Provider) -> None:
    """Show another list on the health page."""
    PANELS.append((title, provider))


@bp.get("/health")
@requires("read")
def health():
    """The state of the machinery."""
    s_ = svc()
    q = s_.queue
    failed = FailedJobRegistry(queue=q)
    jobs = []
    for job_id in failed.get_job_ids(0, 49):
        try:
            job = Job.fetch(job_id, connection=s_.redis)
        except NoSuchJobError:
            continue
        jobs.append(
            {
                "id": job.id,
                "func": job.func_name,
                "args": job.args,
                "ended_at": job.ended_at,
                "error": (job.latest_result().exc_string if job.latest_result() else "") or "",
            }
        )
    now = utcnow()
    with s_.sessions() as s:
        twilio = board_model.recent_events(s, TWILIO_ERRORS, now - timedelta(hours=1))
        unassigned = unassigned_leads(s, now)
    panels = [(title, provider(s_)) for title, provider in PANELS]
    return render_template(
        "console/health.html",
        depth=q.count,
        workers=len(Worker.all(connection=s_.redis)),
        started=StartedJobRegistry(queue=q).count,
        scheduled=ScheduledJobRegistry(queue=q).count,
        failed_count=failed.count,
        failed=jobs,
        twilio=twilio,
        unassigned=unassigned,
        panels=panels,
        deliveries=deliveries.failing(s_),
    )


@bp.post("/health/retry/<job_id>")
@requires("admin")
def retry(job_id: str):
    """Put a failed job back on its queue."""
    registry = FailedJobRegistry(queue=svc().queue)
    try:
        registry.requeue(job_id)
    except (NoSuchJobError, InvalidJobOperation) as exc:  # gone, or no longer failed
        flash(f"Could not retry {job_id}: {exc}", "error")
        return redirect(url_for("console.health.health"))
    audit("job_retried", job_id)
    flash(f"Job {job_id} is queued again.", "info")
    return redirect(url_for("console.health.health"))
