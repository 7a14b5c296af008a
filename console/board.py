"""The live board (polled every two seconds) and one lead's page: timeline, transcript, handoff, consent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, abort, render_template, request

from bot.flows.errors import FlowNotFound
from bot.store import board as board_model
from console.auth import requires, svc

bp = Blueprint("board", __name__)


def _filter() -> board_model.BoardFilter:
    a = request.args
    return board_model.BoardFilter(
        status=a.get("status", ""),
        source=a.get("source", ""),
        service=a.get("service", ""),
        rep=a.get("rep", ""),
    )


@bp.get("/")
@requires("read")
def board():
    """Leads arriving in real time, with filters."""
    flt = _filter()
    with svc().sessions() as s:
        rows = board_model.board(s, flt)
        choices = board_model.filter_choices(s, svc().extras.setdefault("console.board", {}))
    return render_template("console/board.html", rows=rows, flt=flt, choices=choices)


@bp.get("/board/rows")
@requires("read")
def rows():
    """The board's table body, for polling."""
    with svc().sessions() as s:
        rows = board_model.board(s, _filter())
    return render_template("console/_board_rows.html", rows=rows)


@bp.get("/leads/<lead_id>")
@requires("read")
def lead(lead_id: str):
    """Everything about one lead."""
    with svc().sessions() as s:
        view = board_model.lead_detail(s, lead_id)
    if view is None:
        abort(404)
    return render_template(
        "console/lead.html", lead=view, timeline=with_deltas(view["events"]), transcript=transcript(view)
    )


def with_deltas(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event with seconds since the previous one and since the first (the submission)."""
    out, first, prev = [], None, None
    for e in events:
        at: datetime = e["at"]
        first = first or at
        out.append(
            {
                **e,
                "delta": (at - prev).total_seconds() if prev else None,
                "since_start": (at - first).total_seconds(),
            }
        )
        prev = at
    return out


def transcript(view: dict[str, Any]) -> list[dict[str, str]]:
    """What the bot asked and what the prospect said, from the answer and reply events.

    The question text comes from the flow version the conversation pinned, so it is what was asked.
    """
    convs = {c["flow"]: c["flow_version"] for c in view["conversations"]}
    lines: list[dict[str, str]] = []
    for e in view["events"]:
        data = e["data"]
        if e["type"] == "answer":
            step = _step_prompt(convs, data.get("step", ""), view.get("language") or "en")
            if step:
                lines.append({"who": "bot", "text": step})
            said = data.get("raw") if data.get("raw") is not None else data.get("value")
            lines.append(
                {"who": "prospect", "text": f"{said}", "note": f"{data.get('step')} = {data.get('value')}"}
            )
        elif e["type"] == "reply" and data.get("body"):
            lines.append({"who": "prospect", "text": data["body"], "note": "text message"})
        elif e["type"] == "outcome":
            lines.append(
                {
                    "who": "bot",
                    "text": f"Outcome: {data.get('outcome')} ({data.get('action')})",
                    "note": data.get("reason") or "",
                }
            )
    return lines


def _step_prompt(convs: dict[str, str], step_id: str, language: str) -> str:
    """The source text of a step's prompt in the pinned flow version, or ''."""
    for flow_id, version in convs.items():
        try:
            flow = svc().flows.get(flow_id, version)
        except FlowNotFound:
            continue
        step = flow.steps.get(step_id)
        if step is not None:
            return step.prompt.sources.get(step.prompt.pick(language, flow.language), "")
    return ""
