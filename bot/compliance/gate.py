"""The one gate every outbound touch passes: opt-out, consent, calling rules (windows, days, holidays, caps).

Call `check_touch(svc, s, lead, channel)` before any call, text or email to a lead; on a refusal,
`record_verdict(s, lead.id, verdict, touch)` writes the reason and the rule to the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from bot.compliance.optout import OPTED_OUT, is_opt_out, opt_out, opted_out  # noqa: F401 - the gate's API
from bot.compliance.rules import DEFAULT_RULES, RULES_FILE, CallingRules, Rule, RulesFile, parse_window
from bot.store import clock, states
from bot.store.leads import EVENTS, LEADS
from bot.store.tables import Lead
from bot.store.timeline import EventType, record

FALLBACK_ZONES = ("America/New_York", "America/Los_Angeles")  # unknown zone: inside the window in both
CALL_EVENTS = (EventType.DIALING,)  # what counts as one call, and one text, towards the caps
TEXT_EVENTS = (EventType.SMS_SENT,)
CONTACT_EVENTS = CALL_EVENTS + TEXT_EVENTS
WHAT = {CALL_EVENTS: "calls", TEXT_EVENTS: "texts", CONTACT_EVENTS: "calls and texts"}
DAY = timedelta(hours=24)
CHANNELS = frozenset({"call", "sms", "email"})
# Touches to this number (any of its leads) since a time: the caps count people, not lead rows.
TOUCHES = (select(EVENTS.c.at, EVENTS.c.type)
           .select_from(EVENTS.join(LEADS, LEADS.c.id == EVENTS.c.lead_id))
           .where(LEADS.c.phone == bindparam("phone"), EVENTS.c.type.in_(bindparam("types", expanding=True)),
                  EVENTS.c.at >= bindparam("since"))
           .order_by(EVENTS.c.at))


@dataclass(frozen=True)
class Verdict:
    """May we touch this lead now? If not: why, which rule, and when we may (None = never)."""

    allowed: bool
    reason: str = ""
    rule: str = ""
    next_at: datetime | None = None

    @property
    def not_before(self) -> datetime | None:
        """The old name of next_at."""
        return self.next_at


@dataclass(frozen=True)
class Jurisdiction:
    """Every place the lead may be: its states, their rules (federal first, its country's last) and
    the time zones to honour."""

    states: tuple[str, ...]
    rules: tuple[Rule, ...]
    zones: tuple[ZoneInfo, ...]


def jurisdiction(lead: Lead, rules: CallingRules) -> Jurisdiction:
    """The stated state, the ZIP's state and the number's states and zones, all at once (strictest wins)."""
    stated = [c for c in (states.state_code(getattr(lead, "state", None)),
                          states.state_for_zip(getattr(lead, "zip", None))) if c]
    codes = tuple(dict.fromkeys([*stated, *_number_states(lead.phone)]))
    # The number's zones are known exactly; a stated state may be anywhere in it, so all its zones count.
    names = [z for z in (lead.timezone or "").split(",") if z] or _number_zones(lead.phone)
    for code in stated:
        names += states.zones_for_state(code)
    zones = tuple(ZoneInfo(z) for z in dict.fromkeys(names or FALLBACK_ZONES))
    country = rules.countries.get(_number_country(lead.phone))
    applied = (rules.federal, *(rules.states[c] for c in codes if c in rules.states),
               *([country] if country else []))
    return Jurisdiction(codes, applied, zones)


@lru_cache(maxsize=8192)
def _number_states(phone: str) -> tuple[str, ...]:
    try:
        return tuple(states.states_for_number(phone))
    except Exception:  # noqa: BLE001 - an unparsable stored number just has no area-code state
        return ()


@lru_cache(maxsize=8192)
def _number_country(phone: str) -> str:
    """The number's country (ISO code, e.g. 'CA' for +1 416 ...), or '' when unknown."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or ""
    except Exception:  # noqa: BLE001 - an unparsable stored number just has no country
        return ""


@lru_cache(maxsize=8192)
def _number_zones(phone: str) -> list[str]:
    try:
        return states.zones_for_number(phone)
    except Exception:  # noqa: BLE001
        return []


def _blocker(j: Jurisdiction, rules: CallingRules, t: datetime, timed: bool) -> tuple[str, str] | None:
    """(rule, reason) that forbids a touch at `t`, or None when every rule allows it."""
    for zone in j.zones:
        local = t.astimezone(zone)
        for holiday in rules.holidays:
            if name := holiday.name_on(local.date()):
                return "holiday", f"holiday ({name}): no automated outreach"
        if not timed:
            continue
        for rule in j.rules:
            for holiday in rule.holidays:  # a state's own holidays: no calls or texts there
                if name := holiday.name_on(local.date()):
                    return rule.name, f"{rule.name}: no calls on {name}"
            window = rule.window_on(local.weekday())
            if window is None:
                return rule.name, f"{rule.name}: no calls on {local.strftime('%A')}s"
            if not window[0] <= local.time() < window[1]:
                return rule.name, f"{rule.name}: calls only {_hhmm(window)} local time"
    return None


def next_allowed(j: Jurisdiction, rules: CallingRules, now: datetime, timed: bool = True) -> datetime:
    """`now` when every rule allows a touch, else the first instant that does (within 15 days).

    The allowed time is an intersection of intervals, so it opens at `now`, at a window's start or
    at a local midnight in one of the zones: only those instants need checking.
    """
    if _blocker(j, rules, now, timed) is None:
        return now
    starts = {r.window_on(d)[0] for r in j.rules for d in range(7) if r.window_on(d)} if timed else set()
    candidates = set()
    for zone in j.zones:
        day = now.astimezone(zone).date()
        for n in range(16):
            d = day + timedelta(days=n)
            for at in (*starts, datetime.min.time()):
                t = datetime.combine(d, at, tzinfo=zone).astimezone(UTC)
                if t > now:
                    candidates.add(t)
    for t in sorted(candidates):
        if _blocker(j, rules, t, timed) is None:
            return t
    raise ValueError(f"no allowed time within 15 days for zones {j.zones} (check {RULES_FILE})")


def parse_hours(spec: str) -> tuple[Any, Any]:
    """'08:00-21:00' -> (08:00, 21:00) (the old name of rules.parse_window)."""
    return parse_window(spec)


def next_window(zones: list[ZoneInfo], hours: tuple[Any, Any], now: datetime) -> datetime:
    """The first instant from `now` inside `hours` in every zone (one window, no holidays)."""
    j = Jurisdiction((), (Rule("hours", hours),), tuple(zones))
    return next_allowed(j, CallingRules(j.rules[0]), now)


def check(session: Session, lead: Lead, channel: str | None = None, now: datetime | None = None,
          rules: CallingRules | None = None, require_consent: bool = True) -> Verdict:
    """The gate: may `channel` (call, sms, email; default the lead's) touch this lead at `now`?"""
    now = now or clock.now()
    rules = rules or DEFAULT_RULES
    channel = channel or lead.channel
    if channel not in CHANNELS:  # the old signature took CALLING_HOURS here: fail loudly, never guess
        raise ValueError(f"channel must be one of {sorted(CHANNELS)}, got {channel!r}")
    if opted_out(session, lead.phone):
        return Verdict(False, "opted out", "opt-out")
    if channel != "email" and require_consent and not lead.consent:
        return Verdict(False, "no consent on record", "consent")
    j = jurisdiction(lead, rules)
    timed = channel != "email"  # calling-hour laws cover calls and texts; holidays cover everything
    when = next_allowed(j, rules, now, timed)
    if when > now:
        rule, why = _blocker(j, rules, now, timed) or ("", "")
        return _deferred(rule, why, when, j)
    limits = _caps(j, rules, channel)
    if not limits:
        return Verdict(True)
    for cap_rule, cap, _ in limits:
        if cap == 0:
            return Verdict(False, f"{cap_rule}: no automated {channel} allowed", cap_rule)
    kinds = sorted({k for _, _, types in limits for k in types})
    phone = {"phone": lead.phone, "types": kinds, "since": (now - DAY).replace(tzinfo=None)}
    touches = session.execute(TOUCHES, phone).all()
    reached = None  # the limit that frees last: (when, rule, cap, what)
    for cap_rule, cap, types in limits:
        times = [row.at for row in touches if row.type in types]
        if len(times) < cap:
            continue
        free = times[len(times) - cap].replace(tzinfo=UTC) + DAY  # when fewer than `cap` remain in 24 h
        if reached is None or free > reached[0]:
            reached = (free, cap_rule, cap, WHAT[types])
    if reached is None:
        return Verdict(True)
    free, cap_rule, cap, what = reached
    when = next_allowed(j, rules, free, timed)
    return _deferred(cap_rule, f"{cap_rule}: {cap} {what} in 24 h reached", when, j)


def _caps(j: Jurisdiction, rules: CallingRules, channel: str) -> list[tuple[str, int, tuple[str, ...]]]:
    """The caps on this channel, each the strictest of its kind: (the rule's name, the cap, the
    events that count). A state's `contacts_per_24h` counts calls and texts together (Maryland's
    "3 calls or texts"; Florida and Oklahoma count a text as a call)."""
    if channel not in ("call", "sms"):
        return []
    own, kinds = ("texts_per_24h", TEXT_EVENTS) if channel == "sms" else ("calls_per_24h", CALL_EVENTS)
    caps = [(getattr(r, own), r.name) for r in j.rules if getattr(r, own) is not None]
    if channel == "sms" and rules.texts_per_day is not None:
        caps.append((rules.texts_per_day, "texts_per_day"))
    both = [(r.contacts_per_24h, r.name) for r in j.rules if r.contacts_per_24h is not None]
    return ([(min(caps)[1], min(caps)[0], kinds)] if caps else []) + (
        [(min(both)[1], min(both)[0], CONTACT_EVENTS)] if both else [])


def _deferred(rule: str, why: str, when: datetime, j: Jurisdiction) -> Verdict:
    """A refusal until `when`, with the time shown in the lead's first zone."""
    local = when.astimezone(j.zones[0]).isoformat(timespec="minutes")
    return Verdict(False, f"{why}; next at {local}", rule, when)


def _hhmm(window: tuple[Any, Any]) -> str:
    return f"{window[0].strftime('%H:%M')}-{window[1].strftime('%H:%M')}"


def rules_for(svc: Any) -> CallingRules:
    """The services' table (re-read when edited), with CALLING_HOURS as the window for everyone when set."""
    table = svc.extras.get("calling_rules")
    if table is None:
        table = svc.extras["calling_rules"] = RulesFile(svc.settings.flows_dir / RULES_FILE)
    rules = table.current()
    hours = svc.settings.calling_hours
    if not hours:
        return rules
    cached = svc.extras.get("calling_rules_override")
    if cached is None or cached[0] is not rules:  # built once per table version, not per send
        cached = svc.extras["calling_rules_override"] = (rules, rules.override_hours(parse_window(hours)))
    return cached[1]


def check_touch(svc: Any, session: Session, lead: Lead, channel: str | None = None,
                now: datetime | None = None) -> Verdict:
    """check() with the services' rules and REQUIRE_CONSENT: what every send path calls."""
    return check(session, lead, channel, now, rules_for(svc), svc.settings.require_consent)


def record_verdict(session: Session, lead_id: str, verdict: Verdict, touch: str) -> None:
    """Put a refusal in the timeline: `scheduled` (with next_at) or `blocked`, naming the rule."""
    if verdict.allowed:
        return
    if verdict.next_at is None:
        record(session, lead_id, EventType.BLOCKED, reason=verdict.reason, rule=verdict.rule, touch=touch)
        return
    record(session, lead_id, EventType.SCHEDULED, reason=verdict.reason, rule=verdict.rule, touch=touch,
           not_before=verdict.next_at.astimezone(UTC).isoformat())
