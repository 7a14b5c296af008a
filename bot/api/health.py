"""Landing page and /healthz."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import text

from bot.api.hardening import is_loopback_client
from bot.runtime.dev_defaults import generated_key
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
        # Only the generated development key, and only to someone at this machine: a key set in
        # LEAD_API_KEYS is a real one, and the page may be reachable from elsewhere.
        dev_key=generated_key(s) if is_loopback_client() else None,
    )
