"""Flow problems: load-time findings (FlowError) and the runtime exception family (FlowsError)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FlowError:
    """One problem in a flow file, printed as `path:line: where: message`."""

    path: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" if self.line else self.path
        return f"{place}: {self.where}: {self.message}" if self.where else f"{place}: {self.message}"


class FlowsError(Exception):
    """Base class of every runtime error raised by bot.flows."""


class FlowNotFound(FlowsError, KeyError):
    """No valid flow (or flow version) with that id is known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "flow not found"


class InvalidFlow(FlowsError):
    """A flow that was required to load did not; carries every error found."""

    def __init__(self, path: str, errors: list[FlowError]) -> None:
        self.path = path
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:20])
        super().__init__(f"{path}: {len(errors)} error(s)\n{shown}")


class ConversationError(FlowsError):
    """A state cannot take this event (finished, or pinned to another flow version)."""

    def __init__(self, message: str, *, flow_id: str = "", step: str | None = None) -> None:
        self.flow_id = flow_id
        self.step = step
        where = f"flow {flow_id!r}" + (f", step {step!r}" if step else "")
        super().__init__(f"{where}: {message}")
