"""The public API fuzzed against its own OpenAPI document: schemathesis, stateful, on a live gunicorn.

It creates leads and follows the document's links (read the lead, hand in an outcome). Any 5xx, any
undocumented status code or content type, or a body that breaks its schema fails the suite.
FUZZ_API_EXAMPLES sets how many scenarios run (small by default, so `make test` stays quick).
"""

from __future__ import annotations

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import API_KEY
from tests.procs import Stack

# Random text is almost never a real phone number: half of the generated leads get one of these, so the
# run gets past validation, creates leads and follows the links to them.
PHONES = ["+15125550100", "+1 512 555 0199", "(512) 555-0142", "+34 612 345 678"]
ANSWERS = [{"need": True, "budget": 5000, "timing": "next week", "authority": True}, {"need": False},
           {"need": "maybe", "budget": None}, {}]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("FUZZ_API_EXAMPLES", "60"))
# The brief CI run is the same every time (a failure reproduces); a run at length explores at random.
DERANDOMIZE = "FUZZ_API_EXAMPLES" not in os.environ


@pytest.fixture
def live(tmp_path, db_url, redis_url):  # noqa: ANN001, ANN201
    """gunicorn and one worker on the test database, answering on a free port."""
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "LEAD_API_KEYS": API_KEY, "SECRET_KEY": "x",
           "LEADBOT_DATA_DIR": str(tmp_path / "var"), "CALLING_HOURS": "00:00-23:59:59",
           "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}
    stack = Stack(env, tmp_path).start(workers=1, web_workers=2)
    yield stack
    stack.stop()


def test_openapi_document_is_valid_and_complete(live):
    doc = requests.get(live.url + "/openapi.json", timeout=5).json()
    for path in ("/leads", "/leads/{id}", "/leads/{id}/outcome", "/reports/reps", "/healthz"):
        assert path in doc["paths"], path
    lead = doc["paths"]["/leads/{id}"]["get"]["responses"]["200"]
    assert lead["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/LeadView"}
    lead_in = doc["components"]["schemas"]["LeadIn"]
    assert lead_in["properties"]["phone"]["examples"] and "E.164" in lead_in["properties"]["phone"]["description"]
    assert {"if": {"properties": {"channel": {"enum": ["call", "sms"]}}},
            "then": {"required": ["consent"], "properties": {"consent": {"const": True}}}} in lead_in["allOf"]
    schema = schemathesis.openapi.from_dict(doc)
    assert len(list(schema.get_all_operations())) >= 5


def test_stateful_fuzz_finds_no_5xx_and_no_schema_violation(live):
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    schema.config.update(base_url=live.url)

    @schema.hook
    def flatmap_body(context, body):  # noqa: ANN001, ANN202
        path = context.operation.path if context.operation is not None else None
        if path == "/leads" and isinstance(body, dict):
            return st.one_of(st.just(body), st.sampled_from(PHONES).map(lambda phone: {**body, "phone": phone}))
        if path == "/leads/{id}/outcome" and isinstance(body, dict):
            return st.one_of(st.just(body), st.sampled_from(ANSWERS).map(lambda answers: {**body, "answers": answers}))
        return st.just(body)

    seen: set[tuple[str, str, int]] = set()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response, case):  # noqa: ANN001, ANN201
            seen.add((case.method, case.path, response.status_code))
            return super().after_call(response, case)

        def get_call_kwargs(self, case):  # noqa: ANN001, ANN201
            return {"headers": {"Authorization": f"Bearer {API_KEY}"}, "timeout": 10}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # noqa: ANN001
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    Workflow.run(settings=settings(max_examples=EXAMPLES, stateful_step_count=8, deadline=None,
                                   derandomize=DERANDOMIZE,
                                   phases=[Phase.explicit, Phase.generate],
                                   suppress_health_check=list(HealthCheck)))
    # Stateful means it got past intake and followed the document's links: it read a lead it had
    # created, and handed an outcome in for one.
    assert ("GET", "/leads/{id}", 200) in seen, sorted(seen)
    assert ("POST", "/leads/{id}/outcome", 200) in seen, sorted(seen)


def test_every_operation_finds_no_5xx_and_no_schema_violation(live):
    """Every operation, with queries (report windows at the calendar's edges) and bodies of every type."""
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    schema.config.update(base_url=live.url)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=max(EXAMPLES // 2, 10), deadline=None, derandomize=DERANDOMIZE,
                  suppress_health_check=list(HealthCheck))
        def call(case):  # noqa: ANN001, ANN202
            response = case.call(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
            case.validate_response(response, checks=CHECKS)

        call()
