"""The roster each process uses: loaded once, reloaded when the file changes, last good kept on a bad edit."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    def get(self) -> Roster:
        """The current roster; RosterError only when no valid version was ever loaded."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError as exc:
            if self.roster is not None:
                log.error("roster %s unreadable (%s); keeping the last good version", self.path, exc)
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
            if self.roster is None:
                raise
            log.error("%s\nkeeping the last good roster", exc)
            return
        self.stamp = stamp
        log.info("roster %s loaded: %d salespeople", self.path, len(self.roster.salespeople))


def roster_for(svc: Any) -> Roster:
    """The roster at ``svc.settings.roster_path``, cached in ``svc.extras``."""
    cache = svc.extras.get(_KEY)
    if cache is None:
        cache = svc.extras.setdefault(_KEY, RosterCache(Path(svc.settings.roster_path),
                                                        svc.settings.default_region))
    return cache.get()


def rep_for(roster: Roster, phone: str, name: str = "", email: str | None = None) -> Rep:
    """The roster's rep for a phone; a stand-in built from the handoff row if they left the roster."""
    try:
        return roster.rep(phone)
    except KeyError:
        return Rep(name=name or phone, phone=phone, email=email or "", services=(), active=False)
