"""Clients built once from settings and shared by web and worker processes, and the worker's own copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client

from bot.flows.registry import FlowRegistry
from bot.runtime import pacing, queueing, twilio_client
from bot.settings import Settings
from bot.store import database as db
from bot.store.tables import FlowVersion


@dataclass
class Services:
    """Everything a request or job needs; built from settings, never from module globals."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    queue: Queue
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def writer(self) -> db.WriterLock:
        """The cross-process lock around hot-path SQLite write transactions (no-op elsewhere)."""
        return db.WriterLock(self.engine)

    @cached_property
    def twilio(self) -> Client:
        """The official Twilio client (pointed at the simulator or an emulator when configured)."""
        return twilio_client.make_client(self.settings, timeout=self.settings.twilio_timeout_seconds,
                                         limiter=self.limiter)

    @cached_property
    def limiter(self) -> pacing.Limiter:
        """TWILIO_CPS for every call and text, shared through Redis; fresh leads go first."""
        return pacing.Limiter(self.redis, self.settings.twilio_cps, self.queue.key)

    @cached_property
    def low_queue(self) -> Queue:
        """Retries, nurture and backfill: workers take these only when no fresh lead waits."""
        return queueing.make_low_queue(self.redis, self.settings)

    @cached_property
    def flows(self) -> FlowRegistry:
        """The flow registry (hot-reloads valid edits, keeps the last good version)."""
        return make_registry(self)

    @cached_property
    def webhook_token(self) -> str:
        """The secret Twilio signs webhooks with."""
        return twilio_client.auth_token(self.settings)

    def close(self) -> None:
        """Stop the background checkpointer and close pooled DB connections."""
        stop = self.extras.pop("checkpointer", None)
        if stop is not None:
            stop.set()
        if "writer" in self.__dict__:
            self.writer.close()
        self.engine.dispose()


def make_registry(svc: Services) -> FlowRegistry:
    """A flow registry that stores every valid version in the DB, so pinned versions survive restarts."""

    def on_new_version(flow_id: str, version: str, source: str, path: str) -> None:
        with svc.sessions() as s:
            if s.get(FlowVersion, version) is None:
                s.add(FlowVersion(hash=version, flow_id=flow_id, source=source, path=str(path)))
                try:
                    s.commit()
                except IntegrityError:  # another process stored the same version first
                    s.rollback()

    def source_loader(version: str) -> str | None:
        with svc.sessions() as s:
            row = s.get(FlowVersion, version)
            return row.source if row else None

    return FlowRegistry(svc.settings.flows_dir, on_new_version=on_new_version, source_loader=source_loader)


def build_services(settings: Settings) -> Services:
    """Connect to the DB and Redis, create tables, and return the shared services."""
    engine = db.make_engine(settings.db_url)
    db.init_db(engine)
    conn = queueing.connect(settings)
    services = Services(
        settings=settings, engine=engine, sessions=db.make_sessionmaker(engine),
        redis=conn, queue=queueing.make_queue(conn, settings),
    )
    stop = db.start_checkpointer(engine)
    if stop is not None:
        services.extras["checkpointer"] = stop
    return services


_current: Services | None = None


def current() -> Services:
    """This worker process's services (the web process uses app.extensions instead)."""
    global _current
    if _current is None:
        _current = build_services(Settings())
    return _current


def use(services: Services | None) -> None:
    """Run job code in this process against given services (tests and in-process workers)."""
    global _current
    _current = services
