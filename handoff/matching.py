"""Pick the salesperson for a qualified lead: filter, score, then fair weighted round-robin.

The round-robin is smooth weighted round-robin (as in nginx) kept in one Redis hash,
``leadbot:handoff:rr``: one field per rep phone holding that rep's running credit, plus
``__seq``, a counter of picks. A Lua script updates it atomically, so every web and worker
process shares one rotation. Each pick adds every tied rep's weight to its credit, gives
the lead to the highest credit and takes the total of the weights back from the winner.
With equal weights this cycles through the reps, never the same one twice in a row.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from redis import Redis, RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.handoff_tables import OPEN_STATUSES, Handoff
from handoff.roster import HandoffError, Rep, Roster
from handoff.shifts import as_utc
from handoff.territory import lead_territories

log = logging.getLogger(__name__)

DEFAULT_RR_KEY = "leadbot:handoff:rr"
TERRITORY_POINTS = 4
LANGUAGE_POINTS = 2
# Median acknowledgement at or under this counts as fast; over the SLA counts as slow.
FAST_ACK_SECONDS = 60
SPEED_POINTS = 1

# KEYS[1]: the rotation hash. ARGV: rep key, weight, rep key, weight, ...
# Returns {winner, seq, key1, credit1, key2, credit2, ...} with credits after the pick.
_PICK_LUA = """
local total, best, best_credit = 0, nil, nil
local credits = {}
for i = 1, #ARGV, 2 do
  local weight = tonumber(ARGV[i + 1])
  local credit = redis.call('HINCRBY', KEYS[1], ARGV[i], weight)
  credits[#credits + 1] = ARGV[i]
  credits[#credits + 1] = credit
  total = total + weight
  if best == nil or credit > best_credit then best, best_credit = ARGV[i], credit end
end
redis.call('HINCRBY', KEYS[1], best, -total)
for i = 1, #credits, 2 do
  if credits[i] == best then credits[i + 1] = credits[i + 1] - total end
end
local seq = redis.call('HINCRBY', KEYS[1], '__seq', 1)
local out = {best, seq}
for i = 1, #credits do out[#out + 1] = credits[i] end
return out
"""


class NoRepError(HandoffError):
    """Nobody can take the lead now or on any coming shift; ``why`` says what each rep failed."""

    def __init__(self, service: str | None, why: dict[str, Any]) -> None:
        self.service, self.why = service, why
        super().__init__(f"no salesperson can take a '{service}' lead now or on a coming shift "
                         "(inactive, other services, or full with no shift ahead)")


class LeadLike(Protocol):
    """What matching reads from a lead (bot.store.tables.Lead fits)."""

    phone: str
    service: str | None
    language: str


@dataclass(frozen=True)
class Match:
    """The chosen rep, who to try next, and why, for the lead's timeline."""

    rep: Rep
    fallbacks: tuple[Rep, ...]
    available_at: datetime | None  # None: on shift now; else aware UTC start of their next shift
    why: dict[str, Any]
    rotation_seq: int | None = None  # position in the shared rotation, None if no tie was broken

    @property
    def immediate(self) -> bool:
        """True when the rep is on shift now."""
        return self.available_at is None


def open_handoff_counts(session: Session) -> dict[str, int]:
    """Open, unacknowledged handoffs per rep phone (what ``capacity`` limits)."""
    rows = session.execute(
        select(Handoff.rep_phone, func.count()).where(Handoff.status.in_(OPEN_STATUSES))
        .group_by(Handoff.rep_phone)
    )
    return {phone: int(n) for phone, n in rows}


def match_rep(roster: Roster, lead: LeadLike, redis: Redis, *, now: datetime | None = None,
              open_counts: Mapping[str, int] | None = None, ack_seconds: Mapping[str, float] | None = None,
              default_region: str = "US", rr_key: str = DEFAULT_RR_KEY) -> Match:
    """Choose a rep for ``lead``; the next shift's rep when nobody qualifies now.

    Args:
        open_counts: open handoffs per rep phone (see ``open_handoff_counts``).
        ack_seconds: median acknowledgement seconds per rep phone (see ``scorecard.median_ack_seconds``).

    Raises:
        NoRepError: no active rep offers the service on any shift.
    """
    now = as_utc(now or datetime.now(UTC))
    open_counts = open_counts or {}
    lead_keys = lead_territories(lead.phone, default_region)
    language = (getattr(lead, "language", None) or "en").lower()
    why: dict[str, Any] = {"now": now.isoformat(), "lead": {
        "service": lead.service, "language": language, "territories": sorted(lead_keys)}, "reps": {}}
    eligible: list[tuple[Rep, int]] = []
    later: list[Rep] = []
    for rep in roster.salespeople:
        filters = {"active": rep.active, "service": rep.offers(lead.service),
                   "on_shift": rep.hours is None or rep.hours.is_open(now),
                   "capacity": rep.capacity is None or open_counts.get(rep.key, 0) < rep.capacity}
        entry: dict[str, Any] = {"filters": filters, "open": open_counts.get(rep.key, 0),
                                 "capacity": rep.capacity, "passed": all(filters.values())}
        if entry["passed"]:
            entry["score"] = _score(rep, lead_keys, language, ack_seconds, roster.sla_seconds_for(rep))
            eligible.append((rep, entry["score"]["total"]))
        elif filters["active"] and filters["service"] and rep.hours is not None:
            # Off shift, or on shift but full: either way their next shift start is the honest promise.
            later.append(rep)
        why["reps"][rep.name] = entry
    if eligible:
        return _pick(eligible, redis, rr_key, why, available_at=None)
    return _next_shift(later, lead, lead_keys, language, ack_seconds, roster, redis, rr_key, now, why)


def team_for(roster: Roster, lead: LeadLike, default_region: str = "US") -> str | None:
    """The team whose reps would take this lead, whoever is on shift: the best-scored active rep who
    sells its service (territory, language, priority; roster order breaks ties). None when nobody sells
    it or that rep has no team. Used before any handoff, e.g. to pick the team's retry cadence."""
    lead_keys = lead_territories(lead.phone, default_region)
    language = (getattr(lead, "language", None) or "en").lower()
    best: tuple[int, Rep] | None = None
    for rep in roster.salespeople:
        if rep.active and rep.offers(lead.service):
            score = _score(rep, lead_keys, language, None, roster.sla_seconds_for(rep))["total"]
            if best is None or score > best[0]:
                best = (score, rep)
    return best[1].team if best else None


def _score(rep: Rep, lead_keys: frozenset[str], language: str, ack_seconds: Mapping[str, float] | None,
           sla_seconds: int) -> dict[str, Any]:
    """Score components; speed is bucketed so similar reps still tie and share the rotation."""
    territory = TERRITORY_POINTS if lead_keys & set(rep.territories) else 0
    spoken = {lang.split("-")[0] for lang in rep.languages}
    lang_points = LANGUAGE_POINTS if language.split("-")[0] in spoken else 0
    median = (ack_seconds or {}).get(rep.key)
    speed = 0
    if median is not None:
        speed = SPEED_POINTS if median <= FAST_ACK_SECONDS else (-SPEED_POINTS if median > sla_seconds else 0)
    total = territory + lang_points + speed + rep.priority
    return {"territory": territory, "language": lang_points, "speed": speed, "median_ack_seconds": median,
            "priority": rep.priority, "total": total}


def _pick(scored: Sequence[tuple[Rep, int]], redis: Redis, rr_key: str, why: dict[str, Any],
          available_at: datetime | None) -> Match:
    """Take the top score; break ties with the shared rotation; order everyone else as fallbacks."""
    top = max(score for _rep, score in scored)
    tied = sorted((rep for rep, score in scored if score == top), key=lambda r: r.name)
    rest = sorted(((rep, score) for rep, score in scored if score != top),
                  key=lambda rs: (-rs[1], -rs[0].weight, rs[0].name))
    seq = None
    if len(tied) > 1:
        try:
            winner, seq, credits = rotate(redis, rr_key, tied)
            why["rule"] = "round_robin"
        except RedisError as exc:
            # The rotation lives in Redis; a qualified prospect must not wait for it to come back.
            log.warning("round-robin unavailable (%s): picking among %d tied reps at random", exc, len(tied))
            winner, credits = random.choice(tied).key, {rep.key: 0 for rep in tied}
            why["rule"], why["rotation_error"] = "random_tie_break", str(exc)[:200]
        # Next in line among the tied: who the rotation would pick next.
        tied.sort(key=lambda r: (r.key != winner, -credits[r.key] - r.weight, r.name))
    else:
        why["rule"] = "top_score"
    why.update({"top_score": top, "tied": [r.name for r in tied], "picked": tied[0].name, "rotation": seq})
    fallbacks = tuple(tied[1:]) + tuple(rep for rep, _score in rest)
    return Match(tied[0], fallbacks, available_at, why, seq)


def rotate(redis: Redis, rr_key: str, reps: Sequence[Rep]) -> tuple[str, int, dict[str, int]]:
    """One atomic smooth-weighted-round-robin pick: (winner key, sequence number, credits after)."""
    args: list[Any] = []
    for rep in reps:
        args += [rep.key, rep.weight]
    script = redis.register_script(_PICK_LUA)
    result = [_text(x) for x in script(keys=[rr_key], args=args)]
    credits = {result[i]: int(result[i + 1]) for i in range(2, len(result), 2)}
    return result[0], int(result[1]), credits


def _text(value: Any) -> str:
    """Redis replies as str whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _next_shift(later: list[Rep], lead: LeadLike, lead_keys: frozenset[str], language: str,
                ack_seconds: Mapping[str, float] | None, roster: Roster, redis: Redis, rr_key: str,
                now: datetime, why: dict[str, Any]) -> Match:
    """Nobody can take the lead now: hand it to whoever starts work first."""
    starts = {rep.key: rep.hours.next_start(now) for rep in later if rep.hours is not None}
    upcoming = sorted((rep for rep in later if starts[rep.key] is not None),
                      key=lambda r: (starts[r.key], r.name))
    if not upcoming:
        why["rule"] = "no_rep"
        raise NoRepError(lead.service, why)
    first_start = starts[upcoming[0].key]
    scored = []
    for rep in upcoming:
        if starts[rep.key] == first_start:
            score = _score(rep, lead_keys, language, ack_seconds, roster.sla_seconds_for(rep))
            why["reps"][rep.name]["score"] = score
            scored.append((rep, score["total"]))
    match = _pick(scored, redis, rr_key, why, available_at=first_start)
    why["rule"] = "next_shift:" + why["rule"]
    why["available_at"] = first_start.isoformat()
    # After the first shift's reps, later shifts in the order they begin.
    later_reps = tuple(rep for rep in upcoming if starts[rep.key] != first_start)
    return Match(match.rep, match.fallbacks + later_reps, first_start, why, match.rotation_seq)
