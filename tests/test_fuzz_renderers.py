"""Fuzz targets (hypothesis): the TwiML renderers, the SMS renderer and the YAML loaders.

Whatever text reaches them (a lead's name, an answer, a staff member's edit), TwiML stays well-formed
XML that encodes as UTF-8, texts carry no character XML forbids, and a loader either loads or reports
its own error, never another exception. FUZZ_EXAMPLES runs them longer (`FUZZ_EXAMPLES=20000 make test
PYTEST_ARGS=tests/test_fuzz_renderers.py`); CI runs the brief default.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels import voice_render
from bot.flows import sms_render
from bot.flows.engine import Outcome, Prompt, PromptKind
from bot.flows.loader import load_flow_bytes, load_flow_text
from handoff import twiml as handoff_twiml
from handoff.roster import HandoffError, load_roster

# What XML 1.0 forbids: C0 controls but tab, LF and CR; surrogates; U+FFFE and U+FFFF.
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Every code point, surrogates and the C0 controls included: what JSON, a form or a carrier can deliver.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
KEYS = st.lists(st.tuples(st.sampled_from("0123456789*#"), ANY_TEXT), max_size=4).map(tuple)


def well_formed(xml: str) -> None:
    """Parses as XML and encodes as UTF-8 (Flask sends bytes)."""
    xml.encode("utf-8")
    ET.fromstring(xml)


prompts = st.builds(
    Prompt, text=ANY_TEXT, kind=st.sampled_from(list(PromptKind)), language=st.sampled_from(["en", "es", "fr"]),
    voice=st.sampled_from(["Polly.Joanna", "alice"]), step=st.one_of(st.none(), st.just("need")),
    answer_type=st.sampled_from([None, "yes_no", "choice", "text"]), hints=st.lists(ANY_TEXT, max_size=3).map(tuple),
    num_digits=st.sampled_from([None, 1]), keys=KEYS,
)
outcomes = st.one_of(st.none(), st.builds(Outcome, id=st.just("done"), action=st.sampled_from(
    ["warm_transfer", "close", "nurture:x"]), say=ANY_TEXT))


@FUZZ
@given(ps=st.lists(prompts, min_size=1, max_size=3), outcome=outcomes)
def test_voice_twiml_is_always_well_formed(ps, outcome):
    well_formed(str(voice_render.render(ps, outcome, action_url="https://x.test/turn/1?t=0")))


@FUZZ
@given(rep=ANY_TEXT, lead=ANY_TEXT, service=st.one_of(st.none(), ANY_TEXT),
       answers=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3), text=ANY_TEXT)
def test_transfer_twiml_is_always_well_formed(rep, lead, service, answers, text):
    said = handoff_twiml.whisper_text(rep, lead, service, answers)
    well_formed(str(handoff_twiml.whisper(said, "https://x.test/keys/1")))
    well_formed(str(handoff_twiml.goodbye(text, "alice")))
    well_formed(str(handoff_twiml.goodbye(handoff_twiml.nobody_free(rep, 300))))


@FUZZ
@given(ps=st.lists(prompts, min_size=1, max_size=3), outcome=outcomes)
def test_sms_bodies_never_hold_a_character_xml_forbids(ps, outcome):
    body = sms_render.render(ps, outcome)
    assert not XML_INVALID.search(body)
    reply = MessagingResponse()
    reply.message(body)
    well_formed(str(reply))


def _mutations(source: str) -> st.SearchStrategy[str]:
    """The real file with random text spliced in somewhere: mostly-valid YAML reaches the schema checks."""
    return st.tuples(st.integers(0, len(source)), st.integers(0, 40), ANY_TEXT).map(
        lambda t: source[: t[0]] + t[2] + source[t[0] + t[1]:])


yaml_trees = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), ANY_TEXT),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(ANY_TEXT, kids, max_size=4)),
    max_leaves=12,
).map(lambda tree: yaml.safe_dump(tree, allow_unicode=True))
FLOW = (ROOT / "ivr_flows" / "prequal.yaml").read_text()
ROSTER = (ROOT / "handoff" / "roster.yaml").read_text()


@FUZZ
@given(text=st.one_of(ANY_TEXT, yaml_trees, _mutations(FLOW)))
def test_flow_loader_reports_instead_of_raising(text):
    flow, errors = load_flow_text(text, "fuzz.yaml")
    assert (flow is None) == bool(errors)
    raw = text.encode("utf-8", errors="surrogatepass")
    flow, errors = load_flow_bytes(raw, "fuzz.yaml")
    assert (flow is None) == bool(errors)


@pytest.fixture(scope="module")
def scratch():  # noqa: ANN201
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@FUZZ
@given(data=st.one_of(ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=64),
                      yaml_trees.map(str.encode), _mutations(ROSTER).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_roster_loader_reports_instead_of_raising(scratch, data):
    path = scratch / "roster.yaml"
    path.write_bytes(data)
    try:
        load_roster(path)
    except HandoffError:
        pass


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8))


def _limited() -> None:
    """The child may use 1 GiB: a loader that expands the aliases dies of it instead of the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_an_alias_bomb_is_an_error_not_a_hang(scratch):
    path = scratch / "bomb.yaml"
    path.write_text(LAUGHS)
    code = ("import sys\nfrom handoff.roster import HandoffError, load_roster\n"
            "try:\n    load_roster(sys.argv[1])\nexcept HandoffError as exc:\n    print('refused:', exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limited, cwd=ROOT)
    assert done.returncode == 0 and "refused:" in done.stdout and "entries" in done.stdout, done.stderr[-500:]
    flow, errors = load_flow_text(LAUGHS, "bomb.yaml")
    assert flow is None and errors
