"""A movable clock for tests: travel to a moment, then run the touches due by then (never sleep)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import create_engine, select

from bot.store import clock
from bot.store.touch_tables import Touch, TouchStatus

CHICAGO = ZoneInfo("America/Chicago")  # +1 512 numbers (Austin)


def a_weekday_at(hour: int, minute: int = 0, zone: ZoneInfo = CHICAGO) -> datetime:
    """A Tuesday at hh:mm in `zone`, one to two weeks ahead: the same local moment whenever the suite runs."""
    day = datetime.now(UTC).astimezone(zone).date() + timedelta(days=7)
    day += timedelta(days=(1 - day.weekday()) % 7)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


class TimeMachine:
    """Moves leadbot's clock (LEADBOT_CLOCK_FILE) for every process, and releases due touch jobs."""

    def __init__(self, path: Path, db_url: str, queue) -> None:  # noqa: ANN001
        self.path, self.queue = path, queue
        self.engine = create_engine(db_url)

    def travel(self, to: datetime) -> None:
        clock.travel(self.path, to)

    def now(self) -> datetime:
        offset = float(self.path.read_text()) if self.path.exists() else 0.0
        return datetime.now(UTC) + timedelta(seconds=offset)

    def planned(self, lead_id: str) -> list[Touch]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(Touch)
                    .where(Touch.lead_id == lead_id, Touch.status == TouchStatus.PLANNED)
                    .order_by(Touch.due_at)
                ).all()
            )

    def next_due(self, lead_id: str) -> datetime | None:
        rows = self.planned(lead_id)
        return rows[0].due_at.replace(tzinfo=UTC) if rows else None

    def release(self, lead_id: str | None = None) -> list[str]:
        """Move the jobs of touches due by now (on the moved clock) from RQ's schedule into the queue."""
        now = self.now().replace(tzinfo=None)
        with self.engine.connect() as conn:
            query = select(Touch.id).where(Touch.status == TouchStatus.PLANNED, Touch.due_at <= now)
            if lead_id:
                query = query.where(Touch.lead_id == lead_id)
            due = [row.id for row in conn.execute(query)]
        for touch_id in due:
            job_id = f"touch-{touch_id}"
            job = Job.fetch(job_id, connection=self.queue.connection)
            ScheduledJobRegistry(job.origin, connection=self.queue.connection).remove(job_id)
            Queue(job.origin, connection=self.queue.connection)._enqueue_job(job)
        return due

    def close(self) -> None:
        self.engine.dispose()
