"""The sales roster: managers, teams and salespeople, validated with file:line errors.

Indexes in error paths count from 0: ``salespeople[2]`` is the third rep.
See ``handoff/roster.yaml`` for every key and ``handoff/shifts.py`` for the hours format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import yaml
from email_validator import EmailNotValidError, validate_email

from handoff.shifts import WorkingHours, parse_hours
from handoff.territory import normalize_territory
from handoff.yamlschema import (
    Path_,
    Reporter,
    YamlSyntaxError,
    boolean,
    compose,
    get,
    items,
    list_of,
    mapping,
    positive_number,
    text,
    whole,
)

DEFAULT_SLA_MINUTES = 5


class HandoffError(Exception):
    """Base class for every handoff failure."""


class RosterError(HandoffError):
    """The roster cannot be used; ``errors`` lists every problem as ``file:line: path: message``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} roster error(s):\n" + "\n".join(errors))


@dataclass(frozen=True)
class Manager:
    """Copied on handoff mail, told when a rep misses the SLA, and when nobody can take a lead."""

    name: str
    email: str
    phone: str | None = None  # E.164; managers with a phone are texted about unassigned leads


@dataclass(frozen=True)
class Team:
    """A group of reps with its own managers and, optionally, its own SLA."""

    name: str
    managers: tuple[str, ...] = ()  # manager names
    sla_minutes: float | None = None


@dataclass(frozen=True)
class Rep:
    """One salesperson; ``phone`` (E.164) is the stable key used in Redis and the handoffs table."""

    name: str
    phone: str
    email: str
    services: tuple[str, ...]
    territories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    hours: WorkingHours | None = None  # None: always on shift
    weight: int = 1
    priority: int = 0
    capacity: int | None = None  # None: no limit on open handoffs
    active: bool = True
    team: str | None = None

    @property
    def key(self) -> str:
        """The identifier shared by Redis round-robin state and Handoff.rep_phone."""
        return self.phone

    def offers(self, service: str | None) -> bool:
        """True when the rep sells this service (case-insensitive); no service matches anyone."""
        return service is None or service.casefold() in {s.casefold() for s in self.services}


@dataclass(frozen=True)
class Roster:
    """The whole validated roster."""

    managers: tuple[Manager, ...]
    salespeople: tuple[Rep, ...]
    teams: tuple[Team, ...] = ()
    sla_minutes: float = DEFAULT_SLA_MINUTES
    path: str | None = field(default=None, compare=False)

    def rep(self, key: str) -> Rep:
        """The rep with this phone or name; KeyError naming the key otherwise."""
        for rep in self.salespeople:
            if key in (rep.phone, rep.name):
                return rep
        raise KeyError(f"no salesperson '{key}' in roster {self.path or ''}".rstrip())

    def team(self, name: str | None) -> Team | None:
        """The team with this name, if any."""
        return next((t for t in self.teams if t.name == name), None)

    def managers_for(self, rep: Rep) -> tuple[Manager, ...]:
        """The rep's team managers, or every manager when the team names none."""
        team = self.team(rep.team)
        if team and team.managers:
            return tuple(m for m in self.managers if m.name in team.managers)
        return self.managers

    def sla_seconds_for(self, rep: Rep) -> int:
        """Seconds the rep has to acknowledge a handoff (team SLA, else the roster's)."""
        team = self.team(rep.team)
        minutes = team.sla_minutes if team and team.sla_minutes is not None else self.sla_minutes
        return int(minutes * 60)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the roster file format, with phones in E.164 and hours canonical."""
        out: dict[str, Any] = {"sla_minutes": self.sla_minutes}
        out["managers"] = [{"name": m.name, "email": m.email, **({"phone": m.phone} if m.phone else {})}
                           for m in self.managers]
        if self.teams:
            out["teams"] = [_team_dict(t) for t in self.teams]
        out["salespeople"] = [_rep_dict(r) for r in self.salespeople]
        return out

    def to_yaml(self) -> str:
        """The roster as YAML that ``load_roster`` reads back to an equal Roster."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _team_dict(team: Team) -> dict[str, Any]:
    """One team in file form."""
    out: dict[str, Any] = {"name": team.name}
    if team.managers:
        out["managers"] = list(team.managers)
    if team.sla_minutes is not None:
        out["sla_minutes"] = team.sla_minutes
    return out


def _rep_dict(rep: Rep) -> dict[str, Any]:
    """One rep in file form, omitting values equal to the defaults."""
    out: dict[str, Any] = {"name": rep.name, "phone": rep.phone, "email": rep.email,
                           "services": list(rep.services)}
    defaults = Rep(name="", phone="", email="", services=())
    for key in ("territories", "languages", "weight", "priority", "capacity", "active", "team"):
        value = getattr(rep, key)
        if value != getattr(defaults, key):
            out[key] = list(value) if isinstance(value, tuple) else value
    if rep.hours is not None:
        out["hours"] = rep.hours.to_dict()
    return out


def normalize_phone(value: object, region: str) -> str:
    """E.164 form of a phone number; ValueError quoting the input when it is not valid."""
    text = str(value).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a valid phone number '{text}'") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number '{text}'")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_email(value: object) -> str:
    """A syntactically valid staff address; ValueError only when it cannot be delivered at all.

    Staff mail goes through the company's own relay, so internal and reserved names
    (``corp.local``, ``example.test``, ``localhost``) are fine: only the syntax is checked.
    """
    text = str(value).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not a valid email address '{value}': it needs a name, an @ and a domain")
    try:
        # The local part is checked against a stand-in public domain; the domain label by label.
        local = validate_email(f"{local}@example.com", check_deliverability=False).local_part
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except (EmailNotValidError, UnicodeError) as exc:
        raise ValueError(f"not a valid email address '{value}': {exc}") from exc
    if not all(_LABEL.match(label) for label in ascii_domain.split(".")):
        raise ValueError(f"not a valid email address '{value}': the domain '{domain}' is not a host name")
    return f"{local}@{domain.rstrip('.').lower()}"



def load_roster(path: str | Path, default_region: str = "US") -> Roster:
    """Read and validate a roster file, raising RosterError with every problem at once."""
    path = Path(path)
    try:
        data, lines = compose(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise RosterError([f"{path}: cannot read roster: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise RosterError([f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8"]) from exc
    except YamlSyntaxError as exc:
        raise RosterError([str(exc)]) from exc
    report = Reporter(str(path), lines)
    roster = _roster(data if data is not None else {}, report, default_region, str(path))
    if report.errors or roster is None:
        raise RosterError(report.errors)
    return roster


_TOP_KEYS = ("managers", "salespeople", "teams", "sla_minutes")
_REP_KEYS = ("name", "phone", "email", "services", "territories", "languages", "hours",
             "weight", "priority", "capacity", "active", "team")


def _roster(data: Any, report: Reporter, region: str, filename: str) -> Roster | None:
    """Validate the whole document; None when anything is wrong (errors are in ``report``)."""
    if not mapping(data, (), report, _TOP_KEYS):
        return None
    sla = get(data, (), "sla_minutes", report, positive_number, DEFAULT_SLA_MINUTES)
    managers = items(data, "managers", report, lambda m, p: _manager(m, p, report, region))
    teams = items(data, "teams", report, lambda t, p: _team(t, p, report), required=False)
    reps = items(data, "salespeople", report, lambda r, p: _rep(r, p, report, region))
    manager_names = [m.name for m in managers if m]
    for i, team in enumerate(teams):
        for j, name in enumerate(team.managers if team else ()):
            if name not in manager_names:
                report(("teams", i, "managers", j),
                       f"unknown manager '{name}' (known: {_known(manager_names)})")
    team_names = [t.name for t in teams if t]
    seen: dict[str, int] = {}
    for i, rep in enumerate(reps):
        if rep is None:
            continue
        if rep.team is not None and rep.team not in team_names:
            report(("salespeople", i, "team"), f"unknown team '{rep.team}' (known: {_known(team_names)})")
        for key in ("phone", "name"):
            value = getattr(rep, key)
            if f"{key}:{value}" in seen:
                report(("salespeople", i, key), f"duplicate {key} '{value}', "
                       f"also used by salespeople[{seen[f'{key}:{value}']}]")
            seen.setdefault(f"{key}:{value}", i)
    if report.errors:
        return None
    return Roster(tuple(managers), tuple(reps), tuple(teams), sla, path=filename)  # type: ignore[arg-type]


def _manager(item: Any, path: Path_, report: Reporter, region: str) -> Manager | None:
    """One entry of ``managers``."""
    if not mapping(item, path, report, ("name", "email", "phone")):
        return None
    before = len(report.errors)
    name = get(item, path, "name", report, text)
    email = get(item, path, "email", report, normalize_email)
    phone = get(item, path, "phone", report, lambda v: normalize_phone(v, region), None)
    return Manager(name, email, phone) if name and email and len(report.errors) == before else None


def _team(item: Any, path: Path_, report: Reporter) -> Team | None:
    """One entry of ``teams``."""
    if not mapping(item, path, report, ("name", "managers", "sla_minutes")):
        return None
    name = get(item, path, "name", report, text)
    managers = get(item, path, "managers", report, list_of(text), ())
    sla = get(item, path, "sla_minutes", report, positive_number, None)
    return Team(name, managers, sla) if name else None


def _rep(item: Any, path: Path_, report: Reporter, region: str) -> Rep | None:
    """One entry of ``salespeople``; None if any field is wrong."""
    if not mapping(item, path, report, _REP_KEYS):
        return None
    before = len(report.errors)
    fields = {
        "name": get(item, path, "name", report, text),
        "phone": get(item, path, "phone", report, lambda v: normalize_phone(v, region)),
        "email": get(item, path, "email", report, normalize_email),
        "services": get(item, path, "services", report, list_of(text, required=True)),
        "territories": get(item, path, "territories", report, list_of(normalize_territory), ()),
        "languages": get(item, path, "languages", report, list_of(_language, required=True), ("en",)),
        "weight": get(item, path, "weight", report, whole(1), 1),
        "priority": get(item, path, "priority", report, whole(None), 0),
        "capacity": get(item, path, "capacity", report, whole(1), None),
        "active": get(item, path, "active", report, boolean, True),
        "team": get(item, path, "team", report, text, None),
    }
    hours = item.get("hours")
    if hours is not None:
        if not isinstance(hours, dict):
            report(path + ("hours",), "expected a mapping with timezone and days, e.g. mon-fri: 08:00-18:00")
        else:
            fields["hours"], problems = parse_hours(hours)
            for key, message in problems:
                report(path + ("hours",) + ((key,) if key else ()), message)
    return Rep(**fields) if len(report.errors) == before else None


def _language(value: object) -> str:
    """A language tag such as en, es or pt-br, lower-cased."""
    tag = str(value).strip().lower()
    if not tag or not all(part.isalpha() and 2 <= len(part) <= 4 for part in tag.split("-")):
        raise ValueError(f"not a language code '{value}' (use e.g. en, es, pt-br)")
    return tag


def _known(names: list[str]) -> str:
    """A short list of valid choices for an error message."""
    return ", ".join(names) if names else "none defined"
