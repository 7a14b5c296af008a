"""OpenAPI path items and schemas beyond lead intake: the lead view, the outcome API, reports, health."""

from __future__ import annotations

from typing import Any

ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
NULLABLE_STR = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "description": "ISO-8601 UTC time ending in Z"}
LEAD_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
AUTH_ERRORS = {"401": {"description": "Missing or wrong API key", **ERR},
               "503": {"description": "Database unreachable; retry after Retry-After seconds", **ERR}}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object schema that lists its properties (and lets later versions add more)."""
    return {"type": "object", "properties": props, "required": required or list(props)}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


LEAD_VIEW = _obj({
    "id": {"type": "string"}, "status": {"type": "string"}, "status_reason": NULLABLE_STR,
    "name": {"type": "string"}, "phone": {"type": "string"}, "email": NULLABLE_STR, "service": NULLABLE_STR,
    "channel": {"type": "string"}, "source": NULLABLE_STR, "language": {"type": "string"},
    "timezone": NULLABLE_STR, "created_at": TIME,
    "consent": _obj({"given": {"type": "boolean"}, "at": TIME, "ip": NULLABLE_STR, "user_agent": NULLABLE_STR,
                     "page_url": NULLABLE_STR, "text": NULLABLE_STR}),
    "answers": {"type": "object"},
    "attempts": {"type": "array", "items": _obj({
        "number": {"type": "integer"}, "channel": {"type": "string"}, "status": {"type": "string"},
        "call_status": NULLABLE_STR, "sid": NULLABLE_STR, "error": NULLABLE_STR, "created_at": TIME})},
    "conversations": {"type": "array", "items": _obj({
        "id": {"type": "string"}, "channel": {"type": "string"}, "flow": {"type": "string"},
        "flow_version": {"type": "string"}, "open": {"type": "boolean"}, "outcome": NULLABLE_STR})},
    "handoff": {"type": "array", "items": _obj({
        "id": {"type": "string"}, "rep": NULLABLE_STR, "mode": {"type": "string"},
        "status": {"type": "string"}, "try": {"type": ["integer", "null"]}, "created_at": TIME,
        "acked_at": TIME, "reason": NULLABLE_STR})},
    "timeline": {"type": "array", "items": _obj({"type": {"type": "string"}, "at": {"type": "string"},
                                                "data": {"type": "object"}}, ["type", "at"])},
})
OUTCOME_IN = _obj({
    "answers": {"type": "object", "description": "step id -> answer, as the lead's flow names its steps"},
    "source": {"type": "string", "maxLength": 40, "description": "who decided (default 'external')"},
    "outcome": {"type": "string", "description": "'opt_out' opts the lead out; any other value is advisory"},
}, ["answers"])
OUTCOME_OUT = _obj({"id": {"type": "string"}, "status": {"type": "string"}, "outcome": {"type": "string"},
                    "action": {"type": "string"}})
NUM = {"type": ["number", "null"]}
REP_CARD = _obj({
    "rep_phone": {"type": "string"}, "rep_name": NULLABLE_STR, "handoffs": {"type": "integer"},
    "acknowledged": {"type": "integer"}, "median_ack_seconds": NUM, "p90_ack_seconds": NUM,
    "within_sla": {"type": "integer"}, "late": {"type": "integer"}, "missed": {"type": "integer"},
    "pct_within_sla": NUM, "open": {"type": "integer"}, "transfers": {"type": "integer"},
    "transfers_accepted": {"type": "integer"}})
REPORT = _obj({"reps": {"type": "array", "items": {"$ref": "#/components/schemas/RepCard"}}, "since": TIME,
               "until": TIME, "roster_error": {"type": "string"}}, ["reps", "since", "until"])
CHECK = _obj({"ok": {"type": "boolean"}, "ms": {"type": "number"}, "error": {"type": "string"}}, ["ok"])
HEALTH = _obj({"ok": {"type": "boolean"}, "checks": {"type": "object", "additionalProperties": CHECK},
               "telephony": {"type": "string", "enum": ["simulator", "twilio"]}})
INSTANT = {"type": "string", "format": "date-time",
           "description": "ISO-8601 date or date-time (naive means UTC); out of range is a 422"}

SCHEMAS = {"LeadView": LEAD_VIEW, "OutcomeIn": OUTCOME_IN, "OutcomeOut": OUTCOME_OUT, "RepCard": REP_CARD,
           "RepReport": REPORT, "Health": HEALTH}

PATHS: dict[str, Any] = {
    "/leads/{id}": {"get": {
        "operationId": "getLead",
        "summary": "A lead with its attempts, answers, conversations, handoffs, touches (planned, sent, "
                   "cancelled and blocked retries, texts and nurture steps, each with its reason), nurture "
                   "and timeline; `next_contact_at` while it is `scheduled`",
        "parameters": [LEAD_ID],
        "responses": {"200": {"description": "The lead", **_json("LeadView")},
                      "404": {"description": "No such lead", **ERR}, **AUTH_ERRORS},
    }},
    "/leads/{id}/outcome": {"post": {
        "operationId": "postOutcome",
        "summary": "An external assistant hands in answers; leadbot decides the outcome with the lead's flow",
        "parameters": [LEAD_ID],
        "requestBody": {"required": True, **_json("OutcomeIn")},
        "responses": {"200": {"description": "The outcome leadbot decided", **_json("OutcomeOut")},
                      "400": {"description": "Malformed JSON", **ERR},
                      "404": {"description": "No such lead", **ERR},
                      "409": {"description": "The lead already has an outcome", **ERR},
                      "413": {"description": "Body over 64 KiB", **ERR},
                      "422": {"description": "No answers object, or answers to steps the flow lacks", **ERR},
                      **AUTH_ERRORS},
    }},
    "/reports/reps": {"get": {
        "operationId": "repReport",
        "summary": "Per rep: handoffs, median and p90 time to acknowledge, % within SLA, missed, transfers",
        "parameters": [{"name": "since", "in": "query", "required": False, "schema": INSTANT},
                       {"name": "until", "in": "query", "required": False, "schema": INSTANT}],
        "responses": {"200": {"description": "Every rep on the roster, zeros when idle",
                              **_json("RepReport")},
                      "422": {"description": "A bad or out-of-range since/until (each named)", **ERR},
                      **AUTH_ERRORS},
    }},
    "/healthz": {"get": {
        "operationId": "health",
        "summary": "Database and Redis reachability",
        "security": [],
        "responses": {"200": {"description": "Both answer", **_json("Health")},
                      "503": {"description": "One does not answer", **_json("Health")}},
    }},
}
