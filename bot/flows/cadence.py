"""The retry cadence for unanswered calls (`ivr_flows/cadence.yaml`): load, validate, and plan times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.flows.errors import FlowError
from bot.flows.templates import Text
from bot.flows.touchspec import Errors, read
from bot.flows.yamlmarks import MarkedDict, MarkedList, shown

CADENCE_FILE = "cadence.yaml"
OUTCOMES = ("no-answer", "busy", "failed", "machine")
MOMENTS = ("next_morning", "next_afternoon")
TOUCH_KEYS = ("call", "text", "say")
RULE_KEYS = ("retry", "at_least", "to_sms_after", "voicemail", "text_within")
CADENCE_KEYS = ("touches", "on", "morning", "afternoon", "max_calls", "email_last", "quiet")
QUIET_KEYS = ("after", "nudges", "say", "email_after")
DEFAULT_TEXT = (
    "We just tried to call about your {{ lead.service or 'service' }} request; reply CALL and "
    "we'll call right back, or STOP to opt out"
)


@dataclass(frozen=True)
class CadenceTouch:
    """One planned touch: a call or a text, `after` the first unanswered call or at a named moment."""

    channel: str  # call | sms
    after: timedelta | None = None
    at: str | None = None  # next_morning | next_afternoon
    say: Text | None = None


@dataclass(frozen=True)
class Rule:
    """What an unanswered outcome does: retry, how soon at the earliest, fall back, leave a voicemail."""

    retry: bool = True
    at_least: timedelta = timedelta(0)
    to_sms_after: int = 0  # this many failed calls in a row -> texts only
    voicemail: bool = False
    text_within: timedelta | None = None  # send the "we just called" text this soon


@dataclass(frozen=True)
class Quiet:
    """A text conversation the prospect stopped answering: `nudges` reminders `after` apart, then it ends."""

    after: timedelta = timedelta(minutes=30)
    nudges: int = 1
    say: Text | None = None  # before the question again; default "Still there, {first}?"
    email_after: timedelta = timedelta(days=1)  # an email lead with no call or text back by then: told


@dataclass(frozen=True)
class Cadence:
    """A named cadence; `when(i, start, zone)` is the due time of touch i."""

    name: str
    touches: tuple[CadenceTouch, ...]
    rules: dict[str, Rule]
    morning: time = time(10, 0)
    afternoon: time = time(15, 0)
    max_calls: int = 6
    email_last: Text | None = None
    text: Text | None = None  # the machine / fallback text
    quiet: Quiet = Quiet()

    def when(self, index: int, start: datetime, zone: ZoneInfo) -> datetime:
        """Due time (aware) of touch `index` for a cadence started at `start` (aware) in the lead's zone."""
        touch = self.touches[index]
        if touch.after is not None:
            return start + touch.after
        local = start.astimezone(zone)
        days, at = (1, self.morning) if touch.at == "next_morning" else (2, self.afternoon)
        return datetime.combine(local.date() + timedelta(days=days), at, tzinfo=zone)


@dataclass
class CadenceBook:
    """Every cadence in the file and which flow and which team uses which; `default` is required."""

    cadences: dict[str, Cadence] = field(default_factory=dict)
    flows: dict[str, str] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)

    def pick(self, flow_id: str | None, team: str | None = None) -> Cadence:
        """The flow's cadence, else the team's, else `default` (a flow's script knows its leads best)."""
        name = self.flows.get(flow_id or "") or self.teams.get(team or "") or "default"
        return self.cadences.get(name, self.cadences["default"])

    def for_flow(self, flow_id: str | None) -> Cadence:
        """The flow's cadence, else `default`."""
        return self.pick(flow_id)


def _clock(e: Errors, node: MarkedDict, key: str, where: str, default: time) -> time:
    value = node.get(key)
    if value is None:
        return default
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        e(node.line_of(key), f"{where}.{key}", f"expected a time like 10:00, got {shown(value)}")
        return default


def _touch(e: Errors, node: Any, where: str, line: int) -> CadenceTouch | None:
    if not e.keys(node, where, line, TOUCH_KEYS):
        return None
    kinds = [k for k in ("call", "text") if k in node]
    if len(kinds) != 1:
        e(node.line, where, "each touch is either 'call: <when>' or 'text: <when>'")
        return None
    value = node[kinds[0]]
    channel = "call" if kinds[0] == "call" else "sms"
    say = e.text(node["say"], f"{where}.say", node.line_of("say")) if "say" in node else None
    if value in MOMENTS:
        return CadenceTouch(channel, at=str(value), say=say)
    after = e.duration(value, f"{where}.{kinds[0]}", node.line_of(kinds[0]))
    return CadenceTouch(channel, after=after, say=say) if after is not None else None


def _rule(e: Errors, node: Any, where: str, line: int) -> Rule | None:
    if not e.keys(node, where, line, RULE_KEYS):
        return None
    values: dict[str, Any] = {}
    for key in ("retry", "voicemail"):
        if key in node:
            if not isinstance(node[key], bool):
                e(node.line_of(key), f"{where}.{key}", f"expected true or false, got {shown(node[key])}")
            values[key] = bool(node[key])
    for key in ("at_least", "text_within"):
        if key in node:
            values[key] = e.duration(node[key], f"{where}.{key}", node.line_of(key))
    if "to_sms_after" in node:
        if not isinstance(node["to_sms_after"], int) or node["to_sms_after"] < 0:
            e(
                node.line_of("to_sms_after"),
                f"{where}.to_sms_after",
                "expected a whole number of failed calls",
            )
        else:
            values["to_sms_after"] = node["to_sms_after"]
    values["at_least"] = values.get("at_least") or timedelta(0)
    return Rule(**values)


def _quiet(e: Errors, node: Any, where: str, line: int) -> Quiet:
    if not e.keys(node, where, line, QUIET_KEYS):
        return Quiet()
    after = e.duration(node["after"], f"{where}.after", node.line_of("after")) if "after" in node else None
    nudges = node.get("nudges", 1)
    if not isinstance(nudges, int) or isinstance(nudges, bool) or not 0 <= nudges <= 5:
        e(node.line_of("nudges"), f"{where}.nudges",
          f"expected a whole number from 0 to 5, got {shown(nudges)}")
        nudges = 1
    say = e.text(node["say"], f"{where}.say", node.line_of("say")) if "say" in node else None
    email_after = (e.duration(node["email_after"], f"{where}.email_after", node.line_of("email_after"))
                   if "email_after" in node else None)
    return Quiet(after or timedelta(minutes=30), nudges, say, email_after or timedelta(days=1))


def _cadence(e: Errors, name: str, node: Any, line: int) -> Cadence | None:
    where = f"cadences.{name}"
    if not e.keys(node, where, line, CADENCE_KEYS, ("touches",)):
        return None
    raw = node["touches"]
    if not isinstance(raw, MarkedList) or not raw:
        e(node.line_of("touches"), f"{where}.touches", "expected a list of touches (call: 2m, text: 3m, ...)")
        return None
    touches = [_touch(e, t, f"{where}.touches[{i}]", raw.line_of(i)) for i, t in enumerate(raw)]
    rules: dict[str, Rule] = {}
    on = node.get("on", MarkedDict())
    if e.keys(on, f"{where}.on", node.line_of("on"), OUTCOMES):
        for outcome in OUTCOMES:
            rule = (
                _rule(e, on[outcome], f"{where}.on.{outcome}", on.line_of(outcome))
                if outcome in on
                else Rule()
            )
            rules[outcome] = rule or Rule()
    max_calls = node.get("max_calls", 6)
    if not isinstance(max_calls, int) or max_calls < 1:
        e(node.line_of("max_calls"), f"{where}.max_calls", "expected a whole number of calls, at least 1")
        max_calls = 6
    email = (
        e.text(node["email_last"], f"{where}.email_last", node.line_of("email_last"))
        if "email_last" in node
        else None
    )
    if None in touches:
        return None
    text = next((t.say for t in touches if t and t.channel == "sms" and t.say), None)
    quiet = _quiet(e, node["quiet"], f"{where}.quiet", node.line_of("quiet")) if "quiet" in node else Quiet()
    return Cadence(
        name,
        tuple(touches),
        rules,
        _clock(e, node, "morning", where, time(10, 0)),
        _clock(e, node, "afternoon", where, time(15, 0)),
        max_calls,
        email,
        text,
        quiet,
    )


def load_cadences(path: Path, flow_ids: set[str] | None = None) -> tuple[CadenceBook | None, list[FlowError]]:
    """Read and validate the cadence file; `flow_ids` (when given) checks the `flows:` mapping."""
    data, found = read(path)
    if found:
        return None, found
    e = Errors(str(path))
    if not e.keys(data, "", 1, ("cadences", "flows", "teams"), ("cadences",)):
        return None, e.found
    book = CadenceBook()
    cadences = data["cadences"]
    if not isinstance(cadences, MarkedDict) or "default" not in cadences:
        e(
            data.line_of("cadences"),
            "cadences",
            "expected a mapping of cadence name to cadence, with 'default'",
        )
        return None, e.found
    for name, node in cadences.items():
        cadence = _cadence(e, str(name), node, cadences.line_of(name))
        if cadence is not None:
            book.cadences[str(name)] = cadence
    book.flows = _mapping(e, data, "flows", "flow id", cadences, flow_ids, "no flow with id")
    book.teams = _mapping(e, data, "teams", "team name", cadences, None, "")
    return (None if e.found else book), e.found


def _mapping(e: Errors, data: MarkedDict, key: str, what: str, cadences: MarkedDict,
             known: set[str] | None, unknown: str) -> dict[str, str]:
    """`flows:` or `teams:`: each name to a cadence of this file (and, when `known` is given, a real name)."""
    node = data.get(key, MarkedDict())
    if not isinstance(node, MarkedDict):
        e(data.line_of(key), key, f"expected a mapping of {what} to cadence name")
        return {}
    for name, cadence in node.items():
        if cadence not in cadences:
            e(node.line_of(name), f"{key}.{name}", f"unknown cadence {shown(cadence)}")
        elif known is not None and name not in known:
            e(node.line_of(name), f"{key}.{name}", f"{unknown} {shown(name)}")
    return {str(name): str(cadence) for name, cadence in node.items()}


def unknown_teams(path: Path, team_names: set[str], roster: str) -> list[FlowError]:
    """`teams:` entries naming no team of the roster (checked where the roster is known: `leadbot flows
    check`), each at its file:line."""
    data, found = read(path)
    if found or not isinstance(data, MarkedDict) or not isinstance(data.get("teams"), MarkedDict):
        return []
    e = Errors(str(path))
    teams = data["teams"]
    for name in teams:
        if str(name) not in team_names:
            known = ", ".join(sorted(team_names)) or "none"
            e(teams.line_of(name), f"teams.{name}", f"no team {shown(name)} in {roster} (teams: {known})")
    return e.found


def default_text() -> Text:
    """The built-in "we just tried to call" text, for a cadence that names none."""
    from bot.flows.templates import ENV

    return Text({"en": ENV.from_string(DEFAULT_TEXT)}, {"en": DEFAULT_TEXT})
