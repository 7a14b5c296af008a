"""ivr_flows/routing.yaml: which flow a lead gets, by service, then source, then a default."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from bot.flows.errors import FlowError, FlowNotFound
from bot.flows.yamlmarks import MarkedDict, parse_yaml

ROUTING_FILE = "routing.yaml"
# YAML in the flows folder that is not a flow: routing, the calling rules (bot.compliance.rules), the
# cadence, and the lead sources' mapping (bot.sources.mapping).
NOT_FLOWS = frozenset({ROUTING_FILE, "calling_rules.yaml", "cadence.yaml", "sources.yaml"})
DEFAULT_FLOW = "prequal"
KEYS = ("default", "by_service", "by_source")


def _key(value: str | None) -> str:
    return " ".join((value or "").casefold().split())


@dataclass
class Routing:
    """Case-insensitive maps of service and source to flow id."""

    default: str = DEFAULT_FLOW
    by_service: dict[str, str] = field(default_factory=dict)
    by_source: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # "by_service.roofing" -> line, for checks
    loaded: bool = False

    def choose(self, service: str | None, source: str | None, known: Collection[str]) -> str:
        """The first routed flow that exists; a route to a missing flow falls through to the default."""
        for table, value in ((self.by_service, service), (self.by_source, source)):
            flow_id = table.get(_key(value))
            if flow_id is not None and flow_id in known:
                return flow_id
        if self.default in known:
            return self.default
        raise FlowNotFound(f"routing default {self.default!r} is not a valid flow (known: {sorted(known)})")

    def problems(self, path: str, known: Collection[str]) -> list[FlowError]:
        """Routes that name a flow that does not exist."""
        targets = [("default", self.default)]
        targets += [(f"by_service.{k}", v) for k, v in self.by_service.items()]
        targets += [(f"by_source.{k}", v) for k, v in self.by_source.items()]
        return [
            FlowError(path, self.lines.get(where), where, f"unknown flow {flow_id!r}")
            for where, flow_id in targets
            if flow_id not in known
        ]


def load_routing(path: str | Path) -> tuple[Routing, list[FlowError]]:
    """Read routing.yaml; a missing file means "everything goes to the default flow"."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Routing(), []
    except (OSError, UnicodeDecodeError) as exc:
        return Routing(), [FlowError(name, None, "", f"cannot read file: {exc}")]
    data, line, message = parse_yaml(text)
    if message:
        return Routing(), [FlowError(name, line, "", message)]
    if data is None:
        return Routing(loaded=True), []
    errors: list[FlowError] = []
    if not isinstance(data, MarkedDict):
        return Routing(), [
            FlowError(name, 1, "", "routing must be a mapping with default, by_service, by_source")
        ]
    routing = Routing(loaded=True)
    for key in data:
        if key not in KEYS:
            errors.append(
                FlowError(
                    name, data.line_of(key), str(key), f"unknown key {key!r} (allowed: {', '.join(KEYS)})"
                )
            )
    default = data.get("default", DEFAULT_FLOW)
    if isinstance(default, str):
        routing.default = default
        routing.lines["default"] = data.line_of("default")
    else:
        errors.append(FlowError(name, data.line_of("default"), "default", "expected a flow id"))
    for table_name in ("by_service", "by_source"):
        table = data.get(table_name) or MarkedDict()
        if not isinstance(table, MarkedDict):
            errors.append(
                FlowError(name, data.line_of(table_name), table_name, "expected a mapping of name to flow id")
            )
            continue
        for k, v in table.items():
            where = f"{table_name}.{k}"
            if not isinstance(v, str):
                errors.append(FlowError(name, table.line_of(k), where, "expected a flow id"))
                continue
            getattr(routing, table_name)[_key(str(k))] = v
            routing.lines[f"{table_name}.{_key(str(k))}"] = table.line_of(k)
    return routing, errors
