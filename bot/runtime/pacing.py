"""One limiter for every outbound call and text, shared by all workers through Redis (TWILIO_CPS).

Slots are 1/CPS apart (a GCRA: Redis keeps `tat`, the time the next free slot starts). A fresh
lead's contact job *reserves* its slot as soon as a worker dequeues it, before any database work,
and keeps its place in the order the leads were accepted (RQ's `enqueued_at`): the reserved times
go to the pending jobs in that order, whichever job reserved first. So a job slow to prepare does
not lose its turn to a later lead, and a job whose time already passed sends at once.

Low-priority work (retries, nurture, backfill) only takes a slot that is free *now*, with no
reservation pending and no fresh lead queued, and never reserves ahead: a fresh lead never queues
behind it, and at worst waits for the one slot a retry took just before it (1/CPS).

Redis down: nobody can share a limit, so each process sends at most one a second (see acquire).
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import redis

log = logging.getLogger(__name__)

KEY = "leadbot:pacing:tat"  # µs: when the next free slot starts
TIMES = "leadbot:pacing:times"  # reserved, unused slot times (µs)
PENDING = "leadbot:pacing:pending"  # the tickets holding them, scored by the order they were accepted in
EXPIRES = "leadbot:pacing:expires"  # when a ticket nobody asked about again is dropped (a dead worker's)
LAST = "leadbot:pacing:last"  # µs: when the last send was granted
READY = "leadbot:pacing:ready"  # pending tickets whose job is ready to send
KEYS = (KEY, TIMES, PENDING, EXPIRES, LAST, READY)
HIGH, LOW = "high", "low"
LOW_POLL_S = 0.02  # how often a low-priority send looks for a free slot
TICKET_TTL_S = 60  # a reservation whose worker says nothing for this long past its slot is dropped
EARLY_US = 1000  # a slot this close is granted at once: a sleep that wakes 50 µs early costs no round trip
GONE, AGAIN = -2, -1  # the script's answers besides a wait: unknown ticket; low priority must look again

# KEYS: tat, times, pending, expires, the high-priority RQ queue, last (µs of the last send granted),
# ready (the pending tickets whose send is waiting for its turn).
# ARGV: interval µs, op (reserve|take|go|release|low), ticket, order (µs; '' = Redis's now), ttl µs, early µs.
# Returns µs to wait (> 0; ask again with 'go'), 0 when the slot is granted, GONE or AGAIN.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tatk, timesk, pendk, expk, lastk, readyk = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]
local interval, op, ticket = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local ttl, early = tonumber(ARGV[5]), tonumber(ARGV[6])
local function us(x) return string.format('%.0f', x) end
local function slot_of(tk)
  local rank = redis.call('ZRANK', pendk, tk)
  if not rank then return nil end
  return tonumber(redis.call('ZRANGE', timesk, rank, rank)[1])
end
local function forget(tk, slot)
  redis.call('ZREM', pendk, tk)
  redis.call('ZREM', expk, tk)
  redis.call('ZREM', timesk, us(slot))
  redis.call('SREM', readyk, tk)
end
local function last_of()
  return tonumber(redis.call('GET', lastk) or '0')
end
local function tat_of()
  return tonumber(redis.call('GET', tatk) or '0')
end
local function set_tat(v)
  redis.call('SET', tatk, us(v), 'PX', math.max(1, math.ceil((v - now) / 1000)) + 1000)
end
local function drop(tk)
  local slot = slot_of(tk)
  if not slot then return end
  forget(tk, slot)
  if tat_of() == slot + interval then set_tat(slot) end
end
for _, tk in ipairs(redis.call('ZRANGEBYSCORE', expk, '-inf', now, 'LIMIT', 0, 100)) do drop(tk) end
if op == 'low' then
  if redis.call('ZCARD', pendk) > 0 or tat_of() > now or last_of() + interval > now
     or redis.call('LLEN', KEYS[5]) > 0 then
    return -1
  end
  ARGV[4] = ''
  op = 'reserve'  -- hold the slot free now; the send itself asks 'go'
end
if op == 'release' then
  drop(ticket)
  return 0
end
if op == 'reserve' or op == 'take' then
  local tat = tat_of()
  if tat < now then tat = now end
  redis.call('ZADD', timesk, tat, us(tat))
  redis.call('ZADD', pendk, tonumber(ARGV[4]) or now, ticket)
  set_tat(tat + interval)
  for _, k in ipairs({timesk, pendk, expk}) do redis.call('PEXPIRE', k, math.ceil((tat - now + ttl) / 1000)) end
end
local rank = redis.call('ZRANK', pendk, ticket)
if not rank then return -2 end
local times = redis.call('ZRANGE', timesk, 0, rank)
local slot = tonumber(times[rank + 1])
-- A slot that passed sends at once, but never within one interval of the last send, and only
-- after the jobs ahead of it in line that are ready to send too (each one interval after the other).
local due = last_of() + interval
if op ~= 'reserve' then
  redis.call('SADD', readyk, ticket)
  redis.call('PEXPIRE', readyk, math.ceil(ttl / 1000))
  if rank > 0 then
    for i, tk in ipairs(redis.call('ZRANGE', pendk, 0, rank - 1)) do
      if redis.call('SISMEMBER', readyk, tk) == 1 then due = math.max(tonumber(times[i]), due) + interval end
    end
  end
end
due = math.max(slot, due)
if op ~= 'reserve' and due <= now + early then
  forget(ticket, slot)
  redis.call('SET', lastk, us(now), 'PX', math.ceil(interval / 1000) + 1000)
  return 0
end
redis.call('ZADD', expk, math.max(due, now) + ttl, ticket)
return math.max(1, due - now)
"""

# Which priority the running job's sends take; the worker sets it from the queue the job came from.
priority: contextvars.ContextVar[str] = contextvars.ContextVar("leadbot_pacing_priority", default=HIGH)
# A slot already granted for this job's next send (an SMS whose slot was taken before its first
# text was written).
prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar("leadbot_pacing_prepaid", default=False)
# The ticket the worker reserved for this job when it dequeued it, or admitted it (see bot.jobs.worker).
held: contextvars.ContextVar[str | None] = contextvars.ContextVar("leadbot_pacing_held", default=None)


def order_of(at: datetime | None) -> int | None:
    """A job's place in line: its enqueue time in µs since the epoch (naive times are UTC)."""
    if at is None:
        return None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1_000_000)


class Limiter:
    """Calls and texts per second across every process that shares this Redis; cps 0 = unlimited."""

    def __init__(self, conn: redis.Redis, cps: float, high_queue_key: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.conn, self.cps, self.high_queue_key, self._sleep = conn, cps, high_queue_key, sleep
        self._script = conn.register_script(SCRIPT)

    @property
    def interval_us(self) -> int:
        return max(1, int(round(1_000_000 / self.cps))) if self.cps > 0 else 0

    def _run(self, op: str, ticket: str = "", order: int | str = "") -> int:
        args = [self.interval_us, op, ticket, order, TICKET_TTL_S * 1_000_000, EARLY_US]
        return int(self._script(keys=[*KEYS[:4], self.high_queue_key, LAST, READY], args=args))

    def reserve(self, order: int | None = None) -> str | None:
        """Hold the next slot for a job, in line by `order` (µs; default now); None without Redis."""
        ticket = uuid.uuid4().hex
        try:
            self._run("reserve", ticket, "" if order is None else order)
        except redis.RedisError as exc:  # the send takes its slot (or falls back) when it comes
            log.warning("pacing: cannot reserve a slot: %s", exc)
            return None
        return ticket

    def release(self, ticket: str) -> None:
        """Give back a reserved slot the job will not use (the last one is reused; others are skipped)."""
        try:
            self._run("release", ticket)
        except redis.RedisError as exc:  # it expires after TICKET_TTL_S
            log.warning("pacing: cannot release slot %s: %s", ticket, exc)

    def admit(self) -> str | None:
        """Low priority: hold a slot free now (no reservation pending, no fresh lead queued), or None."""
        ticket = uuid.uuid4().hex
        return None if self._run("low", ticket) < 0 else ticket

    def try_acquire(self, level: str) -> float | None:
        """Low: hold a slot free now (0.0), or None. High: reserve the next slot; seconds until it."""
        if level == LOW:
            return None if self.admit() is None else 0.0
        wait = self._run("take", uuid.uuid4().hex)
        return max(wait, 0) / 1_000_000

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
            ticket, op = held.get(), "go"
            held.set(None)
            if ticket is None and level == LOW:
                while (ticket := self.admit()) is None:
                    self._sleep(LOW_POLL_S)
            elif ticket is None:
                ticket, op = uuid.uuid4().hex, "take"
            while (wait := self._run(op, ticket)) != 0:
                if wait == GONE:  # expired while we waited far too long: get back in line
                    op = "take"
                    continue
                op = "go"
                self._sleep(wait / 1_000_000)
            return time.monotonic() - started
        except redis.RedisError as exc:
            # Without Redis no worker can share a limit; one second per send keeps this one under any CPS.
            log.warning("pacing: redis unavailable, sending at 1 per second from this process: %s", exc)
            self._sleep(1.0)
            return time.monotonic() - started


def is_send(method: str, url: str) -> bool:
    """True for the REST requests Twilio counts against calls per second: creating a call or a message."""
    return method.upper() == "POST" and url.split("?", 1)[0].endswith(("/Calls.json", "/Messages.json"))
