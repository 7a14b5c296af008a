"""Landing page and /healthz."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import text

from handoff.roster_cache import roster_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Check the DB and Redis; 200 when both answer, 503 otherwise, always JSON."""
    svc = current_app.extensions["leadbot"]
    checks: dict[str, dict] = {}

    def db_probe() -> None:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    for name, probe in (("db", db_probe), ("redis", svc.redis.ping)):
        t0 = time.perf_counter()
        try:
            probe()
            checks[name] = {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 2)}
        except Exception as exc:  # a health check reports every failure kind, it never raises
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = all(c["ok"] for c in checks.values())
    # A stale roster (a bad edit; the last good one still serves) is reported, not a 503: taking
    # every web node out of the load balancer would lose leads over a typo.
    resp = jsonify({"ok": ok, "checks": checks, "telephony": "simulator" if svc.settings.simulated_telephony
                    else "twilio", **roster_health(svc)})
    resp.status_code = 200 if ok else 503
    return resp


@bp.get("/")
def index():
    """What is running, and where to go next."""
    svc = current_app.extensions["leadbot"]
    s = svc.settings
    return render_template(
        "index.html", settings=s, simulated=s.simulated_telephony,
        db=s.db_url.split("@")[-1], redis=(s.redis_url or "").split("@")[-1],
        dev_key=None if s.production else (s.api_keys[0] if s.api_keys else None),
    )
