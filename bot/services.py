"""Clients built once from settings and shared by web and worker processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import redis
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from twilio.rest import Client

from bot import db, queueing, telephony
from bot.settings import Settings


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
        return telephony.make_client(self.settings, timeout=self.settings.twilio_timeout_seconds)

    @cached_property
    def flows(self) -> Any:
        """The flow registry (hot-reloads valid edits, keeps the last good version)."""
        from bot.conversation import make_registry

        return make_registry(self)

    @cached_property
    def webhook_token(self) -> str:
        """The secret Twilio signs webhooks with."""
        return telephony.auth_token(self.settings)

    def close(self) -> None:
        """Stop the background checkpointer and close pooled DB connections."""
        stop = self.extras.pop("checkpointer", None)
        if stop is not None:
            stop.set()
        if "writer" in self.__dict__:
            self.writer.close()
        self.engine.dispose()


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
