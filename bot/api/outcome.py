"""POST /leads/<id>/outcome: an external assistant (Rasa) hands in answers; leadbot decides the outcome."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from bot.api.intake import api_key_required, json_error
from bot.channels.conversation import apply_outcome, flow_for, lead_fields
from bot.flows import engine
from bot.flows.safetext import bad_character
from bot.store.tables import Conversation, Lead, LeadStatus

bp = Blueprint("outcome", __name__)

# Once a lead has an outcome (or opted out) an external assistant cannot re-decide it.
FINAL = {LeadStatus.QUALIFIED.value, LeadStatus.TRANSFERRING.value, LeadStatus.HANDED_OFF.value,
         LeadStatus.NURTURING.value, LeadStatus.DISQUALIFIED.value, LeadStatus.OPTED_OUT.value}


def _controls(body: dict[str, Any]) -> dict[str, str]:
    """{field: problem} for a source or answer holding a control character (PostgreSQL refuses NUL)."""
    bad = {}
    source = body.get("source")
    if source is not None and (not isinstance(source, str) or bad_character(source)):
        bad["source"] = "must be a string without control characters"
    for key, value in body["answers"].items():
        if any(bad_character(text) for text in _strings([key, value])):
            bad[f"answers.{key}"[:80]] = "contains a control character"
    return bad


def _strings(value: Any) -> list[str]:
    """Every string (keys too) in parsed JSON; a loop, not recursion, however deep it nests."""
    found, todo = [], [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return found


@bp.post("/leads/<lead_id>/outcome")
@api_key_required
def post_outcome(lead_id: str):
    """Recompute the outcome from the answers with the lead's own flow (the caller's verdict is advisory)."""
    svc = current_app.extensions["leadbot"]
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("answers"), dict):
        return json_error(422, "validation failed", {"answers": "required: an object of step id -> answer"})
    if bad := _controls(body):
        return json_error(422, "validation failed", bad)
    source = str(body.get("source") or "external")[:40]
    with svc.sessions() as s:
        lead = s.get(Lead, lead_id)
        if lead is None:
            return json_error(404, f"no lead {lead_id}")
        if lead.status in FINAL:
            return json_error(409, f"lead already has an outcome (status {lead.status})")
        flow = flow_for(svc, lead)
        unknown = sorted(set(body["answers"]) - set(flow.steps))
        if unknown:
            return json_error(422, "validation failed", {f"answers.{k}": f"not a step of flow '{flow.id}'"
                                                         for k in unknown})
        answers: dict[str, Any] = body["answers"]
        outcome = (engine.opt_out(flow, answers, lead_fields(lead), reason=f"opt-out via {source}")
                   if body.get("outcome") == "opt_out" else
                   engine.decide(flow, answers, lead_fields(lead), reason=f"answers via {source}"))
        conv = Conversation(lead_id=lead.id, channel=source[:8], phone=lead.phone, flow_id=flow.id,
                            flow_version=flow.version, state={"answers": answers, "source": source})
        s.add(conv)
        s.flush()
        apply_outcome(svc, s, lead, conv, outcome)
        s.commit()
        return jsonify({"id": lead.id, "status": lead.status, "outcome": outcome.id, "action": outcome.action})
