"""Load and validate flow files; never raises on bad input, returns every error instead."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from bot.flows.errors import FlowError, InvalidFlow
from bot.flows.model import Flow
from bot.flows.schema import Builder, build
from bot.flows.yamlmarks import parse_yaml

__all__ = ["FlowError", "load_flow", "load_flow_bytes", "load_flow_text", "require_flow", "version_of"]


def version_of(data: bytes) -> str:
    """A flow version: the sha256 hex digest of the file's bytes."""
    return hashlib.sha256(data).hexdigest()


def load_flow_text(text: str, path: str = "<flow>") -> tuple[Flow | None, list[FlowError]]:
    """Validate flow source `text`; (flow, []) when valid, else (None, every error found)."""
    if not isinstance(text, str):
        return None, [FlowError(path, None, "", f"expected flow text, got {type(text).__name__}")]
    if "\x00" in text:
        return None, [FlowError(path, None, "", "this is not a text file (it contains NUL bytes)")]
    data, line, message = parse_yaml(text)
    if message:
        return None, [FlowError(path, line, "", message)]
    builder = Builder(path)
    flow = build(builder, data)
    errors = sorted(set(builder.errors), key=lambda e: (e.line or 0, e.where, e.message))
    if flow is None:
        if not errors:  # build() refused without saying why: still never hand back a silent failure
            errors = [FlowError(path, None, "", "the flow could not be built")]
        return None, errors
    raw = text.encode("utf-8", errors="surrogatepass")
    return dataclasses.replace(flow, version=version_of(raw), path=path, source=text), []


def load_flow_bytes(data: bytes, path: str = "<flow>") -> tuple[Flow | None, list[FlowError]]:
    """Validate raw file bytes (must be UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [FlowError(path, None, "", f"not UTF-8 text (byte {exc.start}): save the file as UTF-8")]
    flow, errors = load_flow_text(text, path)
    if flow is not None and flow.version != version_of(data):
        flow = dataclasses.replace(flow, version=version_of(data))
    return flow, errors


def load_flow(path: str | Path) -> tuple[Flow | None, list[FlowError]]:
    """Read and validate one flow file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [FlowError(str(path), None, "", f"cannot read file: {exc.strerror or exc}")]
    return load_flow_bytes(data, str(path))


def require_flow(path: str | Path) -> Flow:
    """Load a flow or raise InvalidFlow listing every error."""
    flow, errors = load_flow(path)
    if flow is None:
        raise InvalidFlow(str(path), errors)
    return flow
