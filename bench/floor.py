"""The bare-stack floor: the least any Flask + SQLite + RQ + twilio lead bot must do per lead.

Web: `gunicorn --pythonpath bench 'floor:create_app()'`. POST /lead inserts one row and enqueues one
job by import path; POST /insert only inserts. Worker: `python bench/floor.py worker`, a plain
SimpleWorker whose job posts Calls.json through the official client, redirected like leadbot's.
No validation, no dedupe, no timeline, no retries: leadbot's cost is measured against this.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import redis
from flask import Flask, jsonify, request
from rq import Queue, SimpleWorker

QUEUE = "floor"
SCHEMA = "CREATE TABLE IF NOT EXISTS leads (id TEXT PRIMARY KEY, name TEXT, phone TEXT, created_at TEXT)"


def _db() -> sqlite3.Connection:
    """One connection per process, with the same pragmas leadbot uses (WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(os.environ["FLOOR_DB"], timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(SCHEMA)
    conn.commit()
    return conn


def create_app() -> Flask:
    """The floor web app; its connections are made per gunicorn worker, like leadbot's."""
    app = Flask("floor")
    db = _db()
    queue = Queue(QUEUE, connection=redis.Redis.from_url(os.environ["REDIS_URL"]))

    def insert() -> str:
        data = request.get_json()
        lead_id = uuid.uuid4().hex
        db.execute("INSERT INTO leads VALUES (?, ?, ?, ?)",
                   (lead_id, data["name"], data["phone"], datetime.now(UTC).isoformat()))
        db.commit()
        return lead_id

    @app.get("/ping")
    def ping():
        return "ok"

    @app.post("/insert")
    def insert_only():
        return jsonify(id=insert()), 202

    @app.post("/lead")
    def lead():
        lead_id = insert()
        queue.enqueue("floor.place_call", request.get_json()["phone"])
        return jsonify(id=lead_id), 202

    return app


@cache
def _twilio():  # noqa: ANN202
    """The official client, built once per worker process, redirected to TWILIO_API_BASE_URL."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from twilio.rest import Client

    from bot.runtime.twilio_client import RebasedHttpClient

    http = RebasedHttpClient(os.environ["TWILIO_API_BASE_URL"], timeout=10)
    return Client(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"], http_client=http)


def place_call(phone: str) -> str:
    """The floor's job: one Calls.json request."""
    call = _twilio().calls.create(to=phone, from_="+15125550000", url="http://127.0.0.1/answer")
    return call.sid


def main() -> None:
    """`python bench/floor.py worker`: one plain SimpleWorker on the floor queue."""
    if sys.argv[1:] != ["worker"]:
        raise SystemExit("usage: floor.py worker")
    import floor  # the job runs as floor.place_call: warm that module's client, not __main__'s

    floor._twilio()
    conn = redis.Redis.from_url(os.environ["REDIS_URL"])
    SimpleWorker([Queue(QUEUE, connection=conn)], connection=conn).work()


if __name__ == "__main__":
    main()
