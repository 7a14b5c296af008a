"""All flows of a folder, hot-reloaded by mtime, with every valid version kept for pinned conversations."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.flows.answers import warm as warm_parsers
from bot.flows.errors import FlowError, FlowNotFound
from bot.flows.loader import load_flow_bytes, load_flow_text, version_of
from bot.flows.model import Flow
from bot.flows.routing import NOT_FLOWS, ROUTING_FILE, Routing, load_routing

log = logging.getLogger(__name__)

NewVersionHook = Callable[[str, str, str, str], None]  # (flow_id, version, source_text, path)
SourceLoader = Callable[[str], str | None]  # version hash -> flow source text, e.g. from the database
RECHECK_SECONDS = 1.0


@dataclass
class _Seen:
    """What we last read from one file."""

    stamp: tuple[int, int]  # (mtime_ns, size)
    version: str | None
    flow_id: str | None


class FlowRegistry:
    """Loads every `*.yaml` flow in `flows_dir`; a broken edit never replaces a working version."""

    def __init__(
        self,
        flows_dir: str | Path,
        on_new_version: NewVersionHook | None = None,
        source_loader: SourceLoader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.on_new_version = on_new_version
        self.source_loader = source_loader
        self._clock = clock
        self._lock = threading.RLock()
        self._versions: dict[str, Flow] = {}
        self._current: dict[str, Flow] = {}
        self._files: dict[Path, _Seen] = {}
        self._errors: dict[str, list[FlowError]] = {}
        self._routing = Routing()
        self._routing_stamp: tuple[int, int] | None = None
        self._checked_at: float | None = None
        self.refresh(force=True)
        # The first dateparser call loads its language data (~0.25 s): pay it here, not on a live call.
        warm_parsers()

    @property
    def errors(self) -> dict[str, list[FlowError]]:
        """Current problems by file path (flows whose last edit is broken, and routing.yaml)."""
        with self._lock:
            found = {path: list(errs) for path, errs in self._errors.items() if errs}
            routing_path = str(self.flows_dir / ROUTING_FILE)
            dangling = self._routing.problems(routing_path, self._current) if self._routing.loaded else []
            if dangling:
                found[routing_path] = found.get(routing_path, []) + dangling
            return found

    def ids(self) -> list[str]:
        """Ids of the flows that currently have a valid version."""
        self.refresh()
        return sorted(self._current)

    def current(self, flow_id: str) -> Flow:
        """The newest valid version of a flow (files re-checked at most once a second)."""
        self.refresh()
        flow = self._current.get(flow_id)
        if flow is None:
            raise FlowNotFound(f"no valid flow {flow_id!r} in {self.flows_dir}")
        return flow

    def get(self, flow_id: str, version: str) -> Flow:
        """A specific version: one seen by this process, else rebuilt from `source_loader`."""
        flow = self._versions.get(version)
        if flow is None and self.source_loader is not None:
            source = self.source_loader(version)
            if source is not None:
                flow = self._rebuild(flow_id, version, source)
        if flow is None or flow.id != flow_id:
            raise FlowNotFound(f"flow {flow_id!r} version {version[:12]} is not known")
        return flow

    def choose(self, service: str | None = None, source: str | None = None) -> str:
        """The flow id for a lead, by service, then source, then the routing default."""
        self.refresh()
        return self._routing.choose(service, source, set(self._current))

    def refresh(self, force: bool = False) -> None:
        """Re-stat the folder (throttled unless `force`) and load new or changed files."""
        now = self._clock()
        if not force and self._checked_at is not None and now - self._checked_at < RECHECK_SECONDS:
            return
        with self._lock:
            self._checked_at = now
            present = set()
            for path in sorted(self.flows_dir.glob("*.yaml")):
                if path.name in NOT_FLOWS:
                    continue
                present.add(path)
                self._check_file(path)
            for path in set(self._files) - present:
                self._forget(path)
            self._check_routing()

    def _check_file(self, path: Path) -> None:
        try:
            stat = path.stat()
        except OSError:
            return  # vanished between glob and stat: handled as removed on the next pass
        stamp = (stat.st_mtime_ns, stat.st_size)
        seen = self._files.get(path)
        if seen is not None and seen.stamp == stamp:
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._errors[str(path)] = [FlowError(str(path), None, "", f"cannot read file: {exc}")]
            return
        version = version_of(data)
        flow = self._versions.get(version)
        errors: list[FlowError] = []
        if flow is None:
            flow, errors = load_flow_bytes(data, str(path))
        if flow is None:
            # Keep serving the last good version; staff see the errors in `errors` and `flows check`.
            self._errors[str(path)] = errors
            self._files[path] = _Seen(stamp, seen.version if seen else None, seen.flow_id if seen else None)
            log.warning("flow %s has %d error(s); keeping the last good version", path, len(errors))
            return
        owner = next((p for p, s in self._files.items() if s.flow_id == flow.id and p != path), None)
        if owner is not None:
            self._errors[str(path)] = [
                FlowError(str(path), None, "id", f"flow id {flow.id!r} is already used by {owner}")
            ]
            self._files[path] = _Seen(stamp, None, None)
            return
        self._errors.pop(str(path), None)
        self._files[path] = _Seen(stamp, version, flow.id)
        self._register(flow)
        self._current[flow.id] = flow

    def _forget(self, path: Path) -> None:
        seen = self._files.pop(path)
        self._errors.pop(str(path), None)
        if seen.flow_id and self._current.get(seen.flow_id, None) is not None:
            # A deleted file retires its flow for new leads; pinned conversations still use get().
            self._current.pop(seen.flow_id, None)

    def _register(self, flow: Flow) -> None:
        if flow.version in self._versions:
            return
        self._versions[flow.version] = flow
        if self.on_new_version is not None:
            self.on_new_version(flow.id, flow.version, flow.source, flow.path)

    def _rebuild(self, flow_id: str, version: str, source: str) -> Flow | None:
        if version_of(source.encode("utf-8")) != version:
            log.error("stored source for flow %s version %s does not match its hash", flow_id, version[:12])
            return None
        flow, errors = load_flow_text(source, f"<{flow_id}@{version[:12]}>")
        if flow is None:
            log.error("stored flow %s version %s no longer loads: %s", flow_id, version[:12], errors[:3])
            return None
        with self._lock:
            self._versions[version] = flow
        return flow

    def _check_routing(self) -> None:
        path = self.flows_dir / ROUTING_FILE
        try:
            stat = path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if stamp == self._routing_stamp and stamp is not None:
            return
        self._routing_stamp = stamp
        routing, errors = load_routing(path) if stamp else (Routing(), [])
        if errors:
            self._errors[str(path)] = errors
            if stamp and self._routing.loaded:
                return  # keep the last good routing
        else:
            self._errors.pop(str(path), None)
        self._routing = routing
