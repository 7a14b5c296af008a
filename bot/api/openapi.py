"""The OpenAPI document for the intake API, generated from the pydantic contract."""

from __future__ import annotations

from typing import Any

from bot.api.openapi_paths import PATHS, SCHEMAS

NEW_ID = "$response.body#/id"  # the links from a new lead to reading it and to its outcome

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"},
                   "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
    "required": ["error"],
}


# A lead is kept when an optional field is bad: for call and sms an unusable email is dropped (the raw
# value goes in the timeline's input_warning event), and over-long optional text is cut.
WARNINGS = {"type": "object", "additionalProperties": {"type": "string"},
            "description": "Fields accepted in a changed form, each with why: an unusable email ignored "
                           "(channel call or sms), over-long text cut to its limit, control characters "
                           "removed"}


UNASSIGNED = {
    "type": "object", "required": ["leads", "count"],
    "properties": {"count": {"type": "integer"}, "leads": {"type": "array", "items": {
        "type": "object", "required": ["lead_id", "reason", "since", "waiting_seconds"],
        "properties": {"lead_id": {"type": "string"}, "name": {"type": "string"}, "phone": {"type": "string"},
                       "service": {"type": ["string", "null"]}, "status": {"type": "string"},
                       "reason": {"type": "string"}, "since": {"type": "string", "format": "date-time"},
                       "waiting_seconds": {"type": "integer"}, "answers": {"type": "object"}}}}},
}


def document(lead_model: Any) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document."""
    schema = lead_model.model_json_schema()
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    accepted = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "status": {"type": "string"},
                       "duplicate": {"type": "boolean"}, "warnings": WARNINGS},
        "required": ["id", "status"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadbot intake API", "version": "1.0.0",
                 "description": "Post a lead; leadbot calls (or texts, or emails) it within seconds."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"LeadIn": schema, "Accepted": accepted, "Error": ERROR, "Unassigned": UNASSIGNED,
                        **SCHEMAS},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/leads": {"post": {
                "operationId": "createLead",
                "summary": "Submit a lead",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                "schema": {"type": "string", "maxLength": 255}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/LeadIn"}},
                    "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/LeadIn"}},
                }},
                "responses": {
                    "202": {"description": "Committed; contact is under way", "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                        "links": {"GetLead": {"operationId": "getLead", "parameters": {"id": NEW_ID}},
                                  "PostOutcome": {"operationId": "postOutcome",
                                                  "parameters": {"id": NEW_ID}}}},
                    "400": {"description": "Malformed body", **err},
                    "401": {"description": "Missing or wrong API key", **err},
                    "413": {"description": "Body over 64 KiB", **err},
                    "415": {"description": "Unsupported content type", **err},
                    "422": {"description": "Invalid fields (each named)", **err},
                    "503": {"description": "Database unreachable: nothing was saved; retry after Retry-After "
                                           "seconds", **err},
                },
            }},
            "/reports/unassigned": {"get": {
                "operationId": "unassignedReport",
                "summary": "Qualified leads nobody could take yet, oldest first, each with why",
                "responses": {"200": {"description": "The unassigned list", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Unassigned"}}}},
                              "401": {"description": "Unauthorized", **err},
                              "503": {"description": "Database unreachable", **err}},
            }},
            **PATHS,
        },
    }
