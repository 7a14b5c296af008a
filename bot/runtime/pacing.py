"""One limiter for every outbound call and text, shared by all workers through Redis (TWILIO_CPS).

Sends go at most one per 1/CPS across every process. Fresh leads take their turns in the order
leadbot accepted them: each contact job is lined up when it is enqueued, scored by its `enqueued_at`
(the acceptance time the lead's timeline shows). The turn goes to the first job in line that is
ready to send, and the ready jobs behind it follow one interval apart; a ready job with one still
preparing ahead of it holds its turn for up to half an interval (so a job slow to prepare does not
lose its place to later leads), and nobody waits longer for a job that is not ready.

A worker that takes a fresh lead's job whose turn is still far off sleeps until shortly before it
(PREPARE_AHEAD_S) before doing the job's database work: in a burst, eight workers preparing leads
whose turns were seconds away took the CPU from the lead whose turn was next.

Low-priority work (retries, nurture, backfill) only takes a turn that is free *now*, with no fresh
lead in line or queued, and never reserves ahead: a fresh lead never queues behind it, and at worst
waits for the one send a retry took just before it (1/CPS).

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

LAST = "leadbot:pacing:last"  # µs: when the last send was granted
PENDING = "leadbot:pacing:pending"  # tickets in line, scored by the order their leads were accepted in
READY = "leadbot:pacing:ready"  # ticket -> µs it first asked for its turn (its job is ready to send)
EXPIRES = "leadbot:pacing:expires"  # when a ticket nobody asked about again is dropped (a dead worker's)
KEYS = (LAST, PENDING, READY, EXPIRES)
HIGH, LOW = "high", "low"
# A send for a lead already qualified or handed off (a rep's leg while the prospect holds, the
# handoff text, a manager's alert): it takes the next turn, ahead of every fresh lead in line.
URGENT = "urgent"
URGENT_AHEAD_US = 10**12  # its place: this far before now (11.6 days), so ahead of any fresh lead
LOW_POLL_S = 0.02  # how often a low-priority send looks for a free turn
TICKET_TTL_S = 60  # a reserved ticket whose job never asks for its turn is dropped after this
READY_TTL_S = 2  # a ready ticket that does not ask again this long after its turn came is dropped
HOLD = 0.5  # a ready job waits up to half an interval for a job ahead of it in line that is still preparing
SLACK = 0.4  # a send up to this part of an interval late does not delay the turns after it: the rate
# stays CPS, and two sends are never closer than 0.6 interval
PREPARE_AHEAD_S = 0.15  # a fresh lead's job starts its own work (claim, checks) this long before its
# turn; until then its worker sleeps and leaves the CPU to the jobs whose turns come first (in a
# burst of 200 leads, 8 workers preparing at once made the first leads late). Under that burst a
# claim took up to 40 ms.
MAX_DEFER_S = 5.0  # and never sleeps longer than this before starting it (its RQ timeout starts after)
EARLY_US = 1000  # a turn this close is granted at once: a sleep that wakes 50 µs early costs no round trip
GONE, AGAIN = -2, -1  # the script's answers besides a wait: unknown ticket; low priority must look again

# KEYS: last, pending, ready, expires, the high-priority RQ queue.
# ARGV: interval µs, op (reserve|take|go|release|low), ticket, order (µs; '' = Redis's now),
#       ticket ttl µs, ready ttl µs, hold µs, early µs, slack µs.
# Returns µs to wait (> 0; ask again with 'go'), 0 when the turn is granted, GONE or AGAIN; 'reserve'
# returns about how many µs until the ticket's turn.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lastk, pendk, readyk, expk = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local interval, op, ticket = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local ttl, ready_ttl, hold, early = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local slack = tonumber(ARGV[9])
local function us(x) return string.format('%.0f', x) end
local function forget(tk)
  redis.call('ZREM', pendk, tk)
  redis.call('ZREM', expk, tk)
  redis.call('HDEL', readyk, tk)
end
local function keep(k, ms) redis.call('PEXPIRE', k, math.ceil(ms)) end
local last = tonumber(redis.call('GET', lastk) or '0')
for _, tk in ipairs(redis.call('ZRANGEBYSCORE', expk, '-inf', now, 'LIMIT', 0, 100)) do forget(tk) end
if op == 'release' then
  forget(ticket)
  return 0
end
if op == 'low' then
  if redis.call('ZCARD', pendk) > 0 or last + interval > now or redis.call('LLEN', KEYS[5]) > 0 then
    return -1
  end
  ARGV[4] = ''
  op = 'reserve'  -- in line now; the send itself asks 'go'
end
local order = tonumber(ARGV[4])
if op == 'reserve' or op == 'take' or (op == 'go' and order and not redis.call('ZSCORE', pendk, ticket)) then
  redis.call('ZADD', pendk, 'NX', order or now, ticket)  -- NX: a place taken at enqueue is kept
  redis.call('ZADD', expk, now + ttl, ticket)
  for _, k in ipairs({pendk, expk, readyk}) do keep(k, ttl / 1000) end
  if op == 'reserve' then  -- about how long until its turn, if every ticket ahead sends
    return math.floor(math.max(last + interval, now) + redis.call('ZRANK', pendk, ticket) * interval - now)
  end
end
local rank = redis.call('ZRANK', pendk, ticket)
if not rank then return -2 end
if redis.call('HSETNX', readyk, ticket, us(now)) == 1 then keep(readyk, ttl / 1000) end
-- One send per interval, in line order among the ready tickets: each takes the turn after the one
-- ahead of it. A ready ticket with one still preparing ahead of it holds its turn for up to `hold`
-- after it became ready (and the tickets behind it wait behind it), then goes.
local turn, preparing, due = last + interval, false, 0
for from = 0, rank, 1000 do  -- HMGET in chunks: unpack() has a limit
  local chunk = redis.call('ZRANGE', pendk, from, math.min(from + 999, rank))
  local since = redis.call('HMGET', readyk, unpack(chunk))
  for i = 1, #since do
    if not since[i] then
      preparing = true
    else
      due = turn
      if preparing then due = math.max(due, tonumber(since[i]) + hold) end
      turn = math.max(due, now) + interval  -- a ticket due by now goes when it next asks: not before now
    end
  end
end
if due <= now + early then
  forget(ticket)
  -- The turn counts from when it was due, not when its sleeper woke: a late wake-up (a busy CPU)
  -- would otherwise push every later turn back with it. Later than `slack`, the line was idle (or
  -- the sender very late): the schedule starts again from this send.
  local turn = last + interval
  if now - turn > slack then turn = now end
  redis.call('SET', lastk, us(turn), 'PX', math.ceil((turn - now + interval) / 1000) + 1000)
  return 0
end
redis.call('ZADD', expk, due + ready_ttl, ticket)
return math.max(1, due - now)
"""

# A place in line taken when a fresh lead's job is enqueued (bot.runtime.queueing), in the same
# MULTI as the push. Its score is the job's `enqueued_at`, leadbot's record of when it accepted the
# lead: two web processes enqueueing within the same millisecond are then lined up in the order the
# lead's timeline (and every report) says they were accepted, not in the order their MULTIs happened
# to reach Redis. KEYS: pending, expires. ARGV: ticket, ttl µs, order µs.
LINE_UP = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[1], 'NX', tonumber(ARGV[3]) or now, ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) / 1000))
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2]) / 1000))
"""


def line_up(pipe: redis.client.Pipeline, ticket: str, order: int | None = None) -> None:
    """Queue a place in line for a job being enqueued in `pipe` (its ticket: the job id), by `order`
    (µs since the epoch: the job's enqueued_at; default Redis's clock)."""
    pipe.eval(LINE_UP, 2, PENDING, EXPIRES, ticket, TICKET_TTL_S * 1_000_000, "" if order is None else order)


# Which priority the running job's sends take; the worker sets it from the queue the job came from.
priority: contextvars.ContextVar[str] = contextvars.ContextVar("leadbot_pacing_priority", default=HIGH)
# A turn already granted for this job's next send (an SMS whose turn came before its first text
# was written).
prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar("leadbot_pacing_prepaid", default=False)
# The ticket the worker reserved for this job when it dequeued it, or admitted it (see bot.jobs.worker).
# (ticket, order): a ticket dropped meanwhile (it waited past TICKET_TTL_S) gets back in line by order.
held: contextvars.ContextVar[tuple[str, int | str] | None] = contextvars.ContextVar("leadbot_pacing_held",
                                                                                   default=None)


# What the job asks again once a send waited RECHECK_AFTER_S or more for its turn: the compliance
# gate, which raises SendStopped when the window closed or the number opted out meanwhile.
recheck: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar("leadbot_pacing_recheck",
                                                                                   default=None)
RECHECK_AFTER_S = 0.5


class SendStopped(Exception):  # noqa: N818 - a decision, not a failure
    """The gate said no after the wait for a turn; `verdict` says why and until when."""

    def __init__(self, verdict: object) -> None:
        super().__init__(getattr(verdict, "reason", "not now"))
        self.verdict = verdict


def after_wait(waited: float) -> None:
    """Ask the gate again when the wait was long enough for it to change its mind (see recheck)."""
    if waited >= RECHECK_AFTER_S and (check := recheck.get()) is not None:
        check()


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
        args = [self.interval_us, op, ticket, order, TICKET_TTL_S * 1_000_000, READY_TTL_S * 1_000_000,
                int(HOLD * self.interval_us), EARLY_US, int(SLACK * self.interval_us)]
        return int(self._script(keys=[*KEYS, self.high_queue_key], args=args))

    def reserve(self, ticket: str | None = None, order: int | None = None,
                defer: bool = False) -> tuple[str, int | str] | None:
        """A place in line for a job's first send, by `order` (µs; default now); None without Redis.

        A ticket already in line (lined up at enqueue) keeps its place. With `defer`, then sleep
        until its turn is near (see defer).
        """
        ticket, place = ticket or uuid.uuid4().hex, "" if order is None else order
        try:
            estimate = self._run("reserve", ticket, place)
        except redis.RedisError as exc:  # the send gets in line (or falls back) when it comes
            log.warning("pacing: cannot reserve a place in line: %s", exc)
            return None
        if defer:
            self.defer((ticket, place), estimate)
        return ticket, place

    def defer(self, place: tuple[str, int | str], estimate_us: int | None = None) -> float:
        """Sleep until a reserved ticket's turn is near (PREPARE_AHEAD_S); returns the seconds slept.

        The estimate (µs; asked of Redis unless given) assumes every ticket ahead sends; it is asked
        again at least twice an interval, so a line that moves faster (a job ahead that does not
        send) is followed.
        """
        ticket, order = place
        started = time.monotonic()
        try:
            if estimate_us is None:
                estimate_us = self._run("reserve", ticket, order)
            while (left := estimate_us / 1_000_000 - PREPARE_AHEAD_S) > 0:
                budget = MAX_DEFER_S - (time.monotonic() - started)
                if budget <= 0:
                    break
                self._sleep(min(left, 0.5 / self.cps, budget))
                estimate_us = self._run("reserve", ticket, order)
        except redis.RedisError as exc:  # the send itself falls back (see acquire)
            log.warning("pacing: cannot ask for the turn's estimate: %s", exc)
        return time.monotonic() - started

    def release(self, ticket: str) -> None:
        """Leave the line: the job will not send (not dispatchable, an email, a failure)."""
        try:
            self._run("release", ticket)
        except redis.RedisError as exc:  # it expires after TICKET_TTL_S
            log.warning("pacing: cannot release ticket %s: %s", ticket, exc)

    def admit(self) -> tuple[str, str] | None:
        """Low priority: a place in line when the next turn is free now and no fresh lead waits, or None."""
        ticket = uuid.uuid4().hex
        return None if self._run("low", ticket) < 0 else (ticket, "")

    def try_acquire(self, level: str) -> float | None:
        """Low: a place when the turn is free now (0.0), or None. High: get in line; seconds to its turn."""
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
            place, op = held.get(), "go"
            held.set(None)
            if place is None and level == LOW:
                while (place := self.admit()) is None:
                    self._sleep(LOW_POLL_S)
            elif place is None and level == URGENT:
                place, op = (uuid.uuid4().hex, int(time.time() * 1_000_000) - URGENT_AHEAD_US), "take"
            elif place is None:
                place, op = (uuid.uuid4().hex, ""), "take"
            ticket, order = place
            while (wait := self._run(op, ticket, order)) != 0:
                if wait == GONE:  # dropped (it did not ask again in time): get back in line
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
