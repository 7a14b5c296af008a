"""The roster each process uses: loaded once, reloaded when the file changes, last good kept on a bad edit."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from handoff.roster import Rep, Roster, RosterError, load_roster

log = logging.getLogger(__name__)

_KEY = "handoff.roster"


@dataclass
class RosterCache:
    """One roster file, re-read when its modification time or size changes."""

    path: Path
    region: str = "US"
    roster: Roster | None = None
    stamp: tuple[int, int] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)  # why the file on disk is not the roster in use

    def get(self) -> Roster:
        """The current roster; RosterError only when no valid version was ever loaded."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError as exc:
            if self.roster is not None:
                log.error("roster %s unreadable (%s); keeping the last good version", self.path, exc)
                self.errors = [f"{self.path}: cannot read roster: {exc.strerror or exc}"]
                return self.roster
            raise RosterError([f"{self.path}: cannot read roster: {exc.strerror or exc}"]) from exc
        if stamp == self.stamp and self.roster is not None:
            return self.roster
        with self.lock:
            if stamp != self.stamp or self.roster is None:
                self._reload(stamp)
        assert self.roster is not None
        return self.roster

    def _reload(self, stamp: tuple[int, int]) -> None:
        """Load the file; a broken edit is logged once and the previous roster stays."""
        try:
            self.roster = load_roster(self.path, self.region)
        except RosterError as exc:
            self.stamp = stamp  # do not re-parse (and re-log) the same broken file on every lead
            self.errors = exc.errors
            if self.roster is None:
                raise
            log.error("%s\nkeeping the last good roster", exc)
            return
        self.stamp, self.errors = stamp, []
        log.info("roster %s loaded: %d salespeople", self.path, len(self.roster.salespeople))


def cache_for(svc: Any) -> RosterCache:
    """This process's cache of the roster at ``svc.settings.roster_path``, kept in ``svc.extras``."""
    cache = svc.extras.get(_KEY)
    if cache is None:
        cache = svc.extras.setdefault(_KEY, RosterCache(Path(svc.settings.roster_path),
                                                        svc.settings.default_region))
    return cache


def roster_for(svc: Any) -> Roster:
    """The roster at ``svc.settings.roster_path`` (the last good version after a bad edit)."""
    return cache_for(svc).get()


def roster_health(svc: Any) -> dict[str, Any]:
    """``{"roster": "ok"}``, else ``"stale"`` (a bad edit; the last good one serves) or ``"unusable"``."""
    cache = cache_for(svc)
    try:
        cache.get()
    except RosterError as exc:
        return {"roster": "unusable", "roster_errors": exc.errors}
    return {"roster": "stale", "roster_errors": list(cache.errors)} if cache.errors else {"roster": "ok"}


def check_file(path: str | Path, region: str, out: TextIO) -> int:
    """``leadbot roster check``: print every error as file:line, or a summary; 0 when the roster loads."""
    try:
        roster = load_roster(path, region)
    except RosterError as exc:
        for error in exc.errors:
            print(error, file=out)
        print(f"{len(exc.errors)} error(s) in {path}", file=out)
        return 1
    active = sum(r.active for r in roster.salespeople)
    print(f"OK: {path}: {len(roster.salespeople)} salespeople ({active} active), "
          f"{len(roster.managers)} manager(s)", file=out)
    return 0


def rep_for(roster: Roster, phone: str, name: str = "", email: str | None = None) -> Rep:
    """The roster's rep for a phone; a stand-in built from the handoff row if they left the roster."""
    try:
        return roster.rep(phone)
    except KeyError:
        return Rep(name=name or phone, phone=phone, email=email or "", services=(), active=False)


def check_roster_text(text: str, filename: str, region: str = "US") -> tuple[Roster | None, list[str]]:
    """Validate roster YAML held in memory (the console's editor): (roster, []) or (None, every error)."""
    from handoff.roster import Reporter, YamlSyntaxError, _roster, compose

    try:
        data, lines = compose(text, filename)
    except YamlSyntaxError as exc:
        return None, [str(exc)]
    report = Reporter(filename, lines)
    roster = _roster(data if data is not None else {}, report, region, filename)
    if report.errors or roster is None:
        return None, list(report.errors) or [f"{filename}: the roster could not be built"]
    return roster, []
