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


GOOGLE_LEAD = {
    "type": "object", "required": ["google_key", "lead_id", "user_column_data"],
    "properties": {
        "google_key": {"type": "string"}, "lead_id": {"type": "string"}, "is_test": {"type": "boolean"},
        "campaign_id": {"type": "integer"}, "form_id": {"type": "integer"}, "adgroup_id": {"type": "integer"},
        "creative_id": {"type": "integer"}, "gcl_id": {"type": "string"}, "api_version": {"type": "string"},
        "user_column_data": {"type": "array", "items": {"type": "object", "properties": {
            "column_id": {"type": "string"}, "column_name": {"type": "string"},
            "string_value": {"type": "string"}}}},
    },
}
_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
SOURCE_RESPONSES = {
    "202": {"description": "Committed (or the earlier lead, with duplicate: true); contact is under way",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
    "400": {"description": "Malformed body", **_ERR},
    "404": {"description": "The adapter's secret is unset (or no such source)", **_ERR},
    "413": {"description": "Body over 64 KiB", **_ERR},
    "422": {"description": "Invalid fields (each named)", **_ERR},
}


def document(lead_model: Any, require_consent: bool = True) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document; with REQUIRE_CONSENT=false, a call or text needs no consent."""
    schema = lead_model.model_json_schema()
    if not require_consent:
        schema["allOf"] = [rule for rule in schema.get("allOf", [])
                           if "consent" not in rule["then"].get("required", [])]
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
            "/leads": {"get": {
                "operationId": "listLeads",
                "summary": "Leads, oldest first, with their sources (for CRMs that pull)",
                "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                               for n in ("status", "source", "since", "cursor", "limit")],
                "responses": {"200": {"description": "{leads: [...], next_cursor}: follow it until null"},
                              "400": {"description": "Bad filter or cursor (each named)", **err},
                              "422": {"description": "A control character in the query", **err},
                              "401": {"description": "Unauthorized", **err}},
            }, "post": {
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
            "/sources/google-ads": {"post": {
                "operationId": "googleAdsLead",
                "summary": "Google Ads lead form webhook (google_key must equal GOOGLE_ADS_KEY)",
                "security": [],
                "requestBody": {"required": True, "content": {"application/json": {"schema": GOOGLE_LEAD}}},
                "responses": {**{k: v for k, v in SOURCE_RESPONSES.items() if k != "202"},
                              "200": {**SOURCE_RESPONSES["202"], "description": "Committed (or the earlier "
                                      "lead, duplicate: true); 200 as Google expects"},
                              "403": {"description": "Wrong google_key", **err}},
            }},
            "/sources/facebook": {
                "get": {"operationId": "facebookVerify",
                        "summary": "Webhooks verification: echoes hub.challenge", "security": [],
                        "parameters": [{"name": n, "in": "query", "schema": {"type": "string"}}
                                       for n in ("hub.mode", "hub.verify_token", "hub.challenge")],
                        "responses": {"200": {"description": "hub.challenge, as text/plain"},
                                      "403": {"description": "Wrong verify token", **err},
                                      "422": {"description": "A control character in the query", **err},
                                      "404": {"description": "FACEBOOK_VERIFY_TOKEN unset", **err}}},
                "post": {"operationId": "facebookLeadgen",
                         "summary": "Lead Ads leadgen notifications; each lead is fetched from the Graph API",
                         "security": [],
                         "parameters": [{"name": "X-Hub-Signature-256", "in": "header", "required": True,
                                         "schema": {"type": "string"}}],
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object"}}}},
                         "responses": {"200": {"description": "Accepted; one fetch job per leadgen_id"},
                                       "403": {"description": "Bad X-Hub-Signature-256", **err},
                                       "404": {"description": "Facebook secrets unset", **err},
                                       "413": {"description": "Body over 64 KiB", **err},
                                       "503": {"description": "Queue down: Facebook retries", **err}}},
            },
            "/sources/{name}": {"post": {
                "operationId": "mappedSourceLead",
                "summary": "A web form or Zapier step, mapped by its entry in SOURCES_PATH",
                "description": "Auth per entry: a bearer token, or an HMAC-SHA256 of the body in a header.",
                "security": [],
                "parameters": [{"name": "name", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
                "responses": {**SOURCE_RESPONSES, "403": {"description": "Wrong token or signature", **err}},
            }},
            "/reports/webhook-deliveries": {"get": {
                "operationId": "webhookDeliveriesReport",
                "summary": "CRM webhook deliveries not yet answered 2xx after a try",
                "parameters": [{"name": "status", "in": "query",
                                "schema": {"type": "string", "enum": ["pending", "failed"]}}],
                "responses": {"200": {"description": "{deliveries: [...]}: attempts, last response, log"},
                              "400": {"description": "Bad status filter", **err},
                              "422": {"description": "A control character in the query", **err},
                              "401": {"description": "Unauthorized", **err}},
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
