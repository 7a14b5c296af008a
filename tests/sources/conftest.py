"""Fixtures for the lead sources and CRM webhooks: an app factory with source settings, a loopback
Graph API fake, a CRM receiver (real HTTP servers on free ports) and a worker that drains every queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, request
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from werkzeug.serving import make_server

from bot.runtime import services as runtime
from tests.conftest import make_settings

FIXTURES = Path(__file__).parent / "fixtures"
GRAPH_VERSION = "v21.0"


def fixture(name: str) -> dict[str, Any]:
    """A documented payload kept under fixtures/ (each names its source URL)."""
    return json.loads((FIXTURES / name).read_text())


class Loopback:
    """A Flask app served on 127.0.0.1 in a thread, recording every request."""

    def __init__(self, app: Flask) -> None:
        self.requests: list[dict[str, Any]] = []
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def start(self) -> Loopback:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


class GraphFake(Loopback):
    """The Graph API's GET /{version}/{lead-id}: serves `leads`, or the scripted errors first."""

    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.errors: list[tuple[int, dict[str, Any]]] = []
        app = Flask("graph-fake")

        @app.get(f"/{GRAPH_VERSION}/<lead_id>")
        def lead(lead_id: str):
            self.requests.append({"path": request.path, "args": request.args.to_dict()})
            if self.errors:
                status, body = self.errors.pop(0)
                return Response(json.dumps(body), status=status, mimetype="application/json")
            if lead_id not in self.leads:
                return Response(json.dumps({"error": {"message": "Unsupported get request.", "type":
                                "GraphMethodException", "code": 100, "error_subcode": 33}}), status=400,
                                mimetype="application/json")
            return Response(json.dumps(self.leads[lead_id]), mimetype="application/json")

        super().__init__(app)


class CrmReceiver(Loopback):
    """A CRM endpoint per path, recording deliveries; `fail[(path, event type)] = n` answers 500 n times."""

    def __init__(self) -> None:
        self.fail: dict[tuple[str, str], int] = {}
        app = Flask("crm-receiver")

        @app.post("/<name>")
        def hook(name: str):
            self.requests.append({"name": name, "headers": dict(request.headers),
                                  "body": request.get_data(as_text=True)})
            key = (name, json.loads(request.get_data(as_text=True))["type"])
            status = 500 if self.fail.get(key, 0) > 0 else 200
            self.fail[key] = self.fail.get(key, 0) - 1
            return Response("{}", status=status, mimetype="application/json")

        super().__init__(app)

    def of(self, name: str) -> list[dict[str, Any]]:
        """Deliveries that reached /name."""
        return [r for r in self.requests if r["name"] == name]


def verify(secret: str, header: str, body: str) -> bool:
    """The README's verification: v1 is the hex HMAC-SHA256 of "t.body" with the subscriber's secret."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    """A loopback Graph API fake."""
    fake = GraphFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def crm_receiver() -> Iterator[CrmReceiver]:
    """A CRM receiver with endpoints /a, /b, ..."""
    receiver = CrmReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def make_app(tmp_path, db_url, redis_url, emulator, graph) -> Iterator[Callable[..., tuple[Any, Any]]]:
    """make_app(**env) -> (client, services) with the source settings (secrets given as env names)."""
    built: list[Any] = []

    def _make(**extra: Any) -> tuple[Any, Any]:
        from app import create_app

        values = {"FACEBOOK_GRAPH_BASE_URL": f"{graph.url}/{GRAPH_VERSION}",
                  "SOURCES_PATH": str(tmp_path / "sources.yaml"), **extra}
        application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, **values))
        application.config["TESTING"] = True
        services = application.extensions["leadbot"]
        runtime.use(services)
        built.append(services)
        return application.test_client(), services

    yield _make
    runtime.use(None)
    for services in built:
        services.close()


def queues(services) -> list[Queue]:  # noqa: ANN001
    """Every queue a worker takes, in its priority order."""
    from bot.jobs.worker import queue_names

    return [Queue(name, connection=services.redis) for name in queue_names(services.settings)]


def work(services) -> None:  # noqa: ANN001
    """One burst of a real (non-forking) worker over every queue; scheduled retries stay scheduled."""
    from bot.jobs.worker import LeadWorker

    class BurstWorker(LeadWorker):
        """No pubsub thread for `rq` commands: a burst that ends at once could wait a minute to join it."""

        def subscribe(self) -> None:
            pass

        def unsubscribe(self) -> None:
            pass

    if any(q.count for q in queues(services)):
        BurstWorker(queues(services), connection=services.redis).work(burst=True)


def promote(services) -> list[tuple[str, float]]:  # noqa: ANN001
    """Move time forward: enqueue every scheduled job now; returns (job id, when it was due)."""
    due = []
    for queue in queues(services):
        registry = ScheduledJobRegistry(queue=queue)
        for raw, score in services.redis.zrange(registry.key, 0, -1, withscores=True):
            job_id = raw.decode()
            registry.remove(job_id)
            queue._enqueue_job(Job.fetch(job_id, connection=services.redis))
            due.append((job_id, score))
    return due


def drain_all(services, rounds: int = 15) -> None:  # noqa: ANN001
    """Work every queue, moving time past each retry's back-off, until nothing is left."""
    for _ in range(rounds):
        work(services)
        if not promote(services) and not any(q.count for q in queues(services)):
            return


@pytest.fixture
def stall(crm_receiver):  # noqa: ANN001, ANN201
    """Makes /slow on the CRM receiver hang until the test ends (a subscriber that never answers)."""
    release = threading.Event()
    app = crm_receiver.server.app
    hook = app.view_functions["hook"]

    def slow_or_not(name: str):  # noqa: ANN202
        if name == "slow":
            crm_receiver.requests.append({"name": name, "headers": dict(request.headers),
                                          "body": request.get_data(as_text=True)})
            release.wait(30)
            return Response("{}", status=200)
        return hook(name)

    app.view_functions["hook"] = slow_or_not
    yield
    release.set()
