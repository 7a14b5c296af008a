"""One limiter for every outbound call and text, shared by all workers through Redis (TWILIO_CPS).

A GCRA in Lua: Redis keeps the time the next send may start (`tat`). A fresh lead's send (high
priority) reserves the next slot and sleeps until it; low-priority work (retries, nurture,
backfill) only takes a slot that is free *now* and never reserves ahead, so a fresh lead never
queues behind it: at worst it waits for the one slot a retry took just before it (1/CPS).
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

KEY = "leadbot:pacing:tat"
HIGH, LOW = "high", "low"
LOW_POLL_S = 0.02  # how often a low-priority send looks for a free slot
# KEYS[1] tat (µs); KEYS[2] the high-priority RQ queue. ARGV: interval µs, priority.
# Returns µs to wait (>= 0) for a granted slot, or -1 when a low-priority send must look again.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if ARGV[2] ~= 'high' and (tat > now or redis.call('LLEN', KEYS[2]) > 0) then
  return -1
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil((tat + interval - now) / 1000) + 1000)
return tat - now
"""

# Which priority the running job's sends take; the worker sets it from the queue the job came from.
priority: contextvars.ContextVar[str] = contextvars.ContextVar("leadbot_pacing_priority", default=HIGH)
# A slot the worker already took for this job before running it (see bot.jobs.worker).
prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar("leadbot_pacing_prepaid", default=False)


class Limiter:
    """Calls and texts per second across every process that shares this Redis; cps 0 = unlimited."""

    def __init__(self, conn: redis.Redis, cps: float, high_queue_key: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.conn, self.cps, self.high_queue_key, self._sleep = conn, cps, high_queue_key, sleep
        self._script = conn.register_script(SCRIPT)

    @property
    def interval_us(self) -> int:
        return int(round(1_000_000 / self.cps)) if self.cps > 0 else 0

    def try_acquire(self, level: str) -> float | None:
        """Take a slot: seconds to wait before sending, or None when a low-priority send must look again."""
        waited = int(self._script(keys=[KEY, self.high_queue_key], args=[self.interval_us, level]))
        return None if waited < 0 else waited / 1_000_000

    def acquire(self, level: str | None = None) -> float:
        """Block until this send may go; returns the seconds waited. Never raises on a Redis failure."""
        if self.cps <= 0:
            return 0.0
        if prepaid.get():
            prepaid.set(False)
            return 0.0
        level = level or priority.get()
        started = time.monotonic()
        try:
            while True:
                wait = self.try_acquire(level)
                if wait is not None:
                    if wait > 0:
                        self._sleep(wait)
                    return time.monotonic() - started
                self._sleep(LOW_POLL_S)
        except redis.RedisError as exc:
            # Without Redis no worker can share a limit; one second per send keeps this one under any CPS.
            log.warning("pacing: redis unavailable, sending at 1 per second from this process: %s", exc)
            self._sleep(1.0)
            return time.monotonic() - started


def is_send(method: str, url: str) -> bool:
    """True for the REST requests Twilio counts against calls per second: creating a call or a message."""
    return method.upper() == "POST" and url.split("?", 1)[0].endswith(("/Calls.json", "/Messages.json"))
