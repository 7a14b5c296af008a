"""The calling-rules table through intake, the contact job and the emulator, on a movable clock."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app import create_app
from bot.cli import main as leadbot
from bot.compliance import gate
from bot.compliance.rules import load_rules, load_rules_text
from bot.runtime import services as runtime
from bot.store.tables import Lead
from bot.store.timeline import record
from tests.conftest import API_KEY, drain, lead_body, make_settings

CHICAGO, NEW_YORK = ZoneInfo("America/Chicago"), ZoneInfo("America/New_York")
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SHIPPED = Path(__file__).resolve().parent.parent / "ivr_flows" / "calling_rules.yaml"


@pytest.fixture
def table_app(tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    """The app with CALLING_HOURS unset: the shipped calling_rules.yaml decides."""
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS=None))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    yield application
    runtime.use(None)
    svc.close()


def post(app, **fields) -> str:  # noqa: ANN001
    resp = app.test_client().post("/leads", json=lead_body(**fields), headers=AUTH)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def view(app, lead_id: str) -> dict:  # noqa: ANN001
    return app.test_client().get(f"/leads/{lead_id}", headers=AUTH).get_json()


def deferrals(app, lead_id: str) -> list[dict]:  # noqa: ANN001
    return [e["data"] for e in view(app, lead_id)["timeline"] if e["type"] == "scheduled"]


def test_lead_at_half_past_ten_at_night_is_called_at_eight(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    movable_clock.set_now(datetime(2026, 12, 2, 22, 30, tzinfo=CHICAGO))  # a Wednesday
    lead_id = post(table_app, phone="+1 312 555 0100")  # Chicago, Illinois: the federal window
    drain(svc, rounds=1)  # one pass: the deferred job is not yet due
    got = view(table_app, lead_id)
    assert emulator.of("/Calls.json") == []
    assert got["status"] == "scheduled"
    assert got["next_contact_at"] == "2026-12-03T14:00:00+00:00"  # 08:00 in Chicago
    [deferred] = deferrals(table_app, lead_id)
    assert deferred["rule"] == "federal"
    assert deferred["reason"] == "federal: calls only 08:00-21:00 local time; next at 2026-12-03T08:00-06:00"
    movable_clock.set_now(datetime(2026, 12, 3, 8, 0, tzinfo=CHICAGO))
    drain(svc)  # the scheduled job comes due
    assert len(emulator.of("/Calls.json")) == 1
    assert view(table_app, lead_id)["next_contact_at"] is None


def test_florida_allows_three_calls_in_24_hours(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    start = datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)
    ids = []
    for n in range(4):  # four requests from one Miami number, each past the dedupe window
        movable_clock.set_now(start + timedelta(minutes=15 * n))
        ids.append(post(table_app, phone="+1 305 555 0100", service=f"job {n}"))
        drain(svc, rounds=1)
    assert len(emulator.of("/Calls.json")) == 3
    last = view(table_app, ids[-1])
    assert last["status"] == "scheduled"
    [deferred] = deferrals(table_app, ids[-1])
    assert deferred["rule"] == "FL"
    assert deferred["reason"] == "FL: 3 calls in 24 h reached; next at 2026-12-04T10:00-05:00"
    movable_clock.set_now(datetime(2026, 12, 4, 10, 0, tzinfo=NEW_YORK))
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 4


@pytest.mark.parametrize("where,at,rule,next_local", [
    # A Florida lead on a New York number at 20:30 ET: Florida stops at 20:00, and in its Central
    # panhandle too, so the next call is 08:00 Central (09:00 Eastern).
    ({"state": "FL"}, datetime(2026, 12, 2, 20, 30, tzinfo=NEW_YORK), "FL", "2026-12-03T09:00-05:00"),
    ({"zip": "33101"}, datetime(2026, 12, 2, 20, 30, tzinfo=NEW_YORK), "FL", "2026-12-03T09:00-05:00"),
    # A New York number that says it lives in Hawaii, at 9:00 ET (4:00 in Honolulu).
    ({"state": "Hawaii"}, datetime(2026, 12, 2, 9, 0, tzinfo=NEW_YORK), "federal", "2026-12-02T13:00-05:00"),
])
def test_a_ported_number_takes_the_stricter_stated_state(table_app, emulator, movable_clock, where, at, rule,
                                                         next_local):
    svc = table_app.extensions["leadbot"]
    movable_clock.set_now(at)
    lead_id = post(table_app, phone="+1 212 555 0100", **where)
    drain(svc, rounds=1)
    assert emulator.of("/Calls.json") == []
    [deferred] = deferrals(table_app, lead_id)
    assert deferred["rule"] == rule and deferred["reason"].endswith(f"next at {next_local}")


def test_an_808_number_at_six_in_the_morning_waits_for_hawaii(table_app, emulator, movable_clock):
    svc = table_app.extensions["leadbot"]
    honolulu = ZoneInfo("Pacific/Honolulu")
    movable_clock.set_now(datetime(2026, 12, 2, 6, 0, tzinfo=honolulu))  # 11:00 in New York
    lead_id = post(table_app, phone="+1 808 555 0100", state="NY")
    drain(svc, rounds=1)
    assert emulator.of("/Calls.json") == []
    assert view(table_app, lead_id)["next_contact_at"] == "2026-12-02T18:00:00+00:00"  # 08:00 in Honolulu


def test_intake_names_a_bad_state_or_zip(table_app):
    resp = table_app.test_client().post("/leads", json=lead_body(state="Atlantis", zip="1234"), headers=AUTH)
    assert resp.status_code == 422
    assert set(resp.get_json()["fields"]) == {"state", "zip"}


def lead_in(phone: str, **fields) -> Lead:  # noqa: ANN003
    from bot.store.leads import lead_timezone

    return Lead(name="A", phone=phone, channel="call", consent=True, timezone=lead_timezone(phone), **fields)


@pytest.mark.parametrize("phone,at,allowed,rule", [
    ("+13125550100", datetime(2026, 12, 25, 12, 0, tzinfo=CHICAGO), False, "holiday"),
    ("+16015550100", datetime(2026, 12, 6, 12, 0, tzinfo=CHICAGO), False, "MS"),  # Mississippi: no Sundays
    ("+15125550100", datetime(2026, 12, 6, 11, 0, tzinfo=CHICAGO), False, "TX"),  # Texas: Sunday from noon
    ("+15125550100", datetime(2026, 12, 6, 12, 0, tzinfo=CHICAGO), True, ""),
    ("+14055550100", datetime(2026, 12, 3, 20, 5, tzinfo=CHICAGO), False, "OK"),  # Oklahoma: until 20:00
    ("+15045550100", datetime(2027, 2, 9, 12, 0, tzinfo=CHICAGO), False, "LA"),  # New Orleans: Mardi Gras
    ("+13125550100", datetime(2027, 2, 9, 12, 0, tzinfo=CHICAGO), True, ""),  # not a holiday in Chicago
    ("+15045550100", datetime(2027, 2, 10, 12, 0, tzinfo=CHICAGO), True, ""),
    ("+14015550100", datetime(2026, 12, 9, 17, 59, tzinfo=NEW_YORK), True, ""),  # Providence: until 18:00
    ("+14015550100", datetime(2026, 12, 9, 18, 0, tzinfo=NEW_YORK), False, "RI"),
    ("+14015550100", datetime(2026, 12, 12, 17, 0, tzinfo=NEW_YORK), False, "RI"),  # Saturdays until 17:00
    ("+14015550100", datetime(2026, 12, 13, 12, 0, tzinfo=NEW_YORK), False, "RI"),  # no Sundays
    ("+14015550100", datetime(2027, 8, 9, 12, 0, tzinfo=NEW_YORK), False, "RI"),  # Victory Day
    ("+14015550100", datetime(2027, 8, 10, 12, 0, tzinfo=NEW_YORK), True, ""),
])
def test_days_and_holidays(services, phone, at, allowed, rule):
    rules, _ = load_rules(SHIPPED)
    with services.sessions() as s:
        verdict = gate.check(s, lead_in(phone), "call", at, rules)
    assert (verdict.allowed, verdict.rule) == (allowed, rule)
    if not allowed:
        assert verdict.next_at > at


def test_require_consent_and_email_outside_hours(services):
    rules, _ = load_rules(SHIPPED)
    night = datetime(2026, 12, 3, 23, 0, tzinfo=CHICAGO)
    lead = lead_in("+13125550100")
    lead.consent = False
    with services.sessions() as s:
        assert gate.check(s, lead, "call", night, rules).rule == "consent"
        assert gate.check(s, lead, "call", night, rules, require_consent=False).rule == "federal"
        assert gate.check(s, lead, "email", night, rules).allowed  # no calling hours for email


def test_a_states_own_holiday_defers_calls_and_texts_but_not_email(services):
    rules, _ = load_rules(SHIPPED)
    noon = datetime(2027, 2, 9, 12, 0, tzinfo=CHICAGO)  # Mardi Gras
    with services.sessions() as s:
        ported = lead_in("+13125550100", state="LA")  # a Chicago number, living in Louisiana
        for channel in ("call", "sms"):
            verdict = gate.check(s, ported, channel, noon, rules)
            assert verdict.reason == "LA: no calls on Mardi Gras; next at 2027-02-10T08:00-06:00"
        assert gate.check(s, ported, "email", noon, rules).allowed
    _, errors = load_rules_text("federal: {window: '08:00-21:00', source: TCPA}\nstates:\n  LA:\n"
                                "    source: La. R.S. 45:811\n    holidays:\n      - {date: '02-30'}\n")
    assert [str(e) for e in errors] == [
        "calling_rules.yaml:6: states.LA.holidays[0].date: expected YYYY-MM-DD or MM-DD, got '02-30'"]


def test_a_canadian_number_keeps_canadas_hours_on_top_of_the_federal_window(table_app, emulator, movable_clock):
    """+1 416 is Toronto: the CRTC's 10:00-18:00 on weekends, and on weekdays the stricter of 9:00-21:30
    and the federal 8:00-21:00. A US number in the same zone is called at once."""
    svc = table_app.extensions["leadbot"]
    toronto = ZoneInfo("America/Toronto")
    movable_clock.set_now(datetime(2026, 12, 5, 18, 30, tzinfo=toronto))  # a Saturday, 18:30
    canadian = post(table_app, phone="+1 416 555 0100")
    american = post(table_app, phone="+1 212 555 0100")  # New York: federal 8-21 only
    drain(svc, rounds=1)
    assert [c["form"]["To"] for c in emulator.of("/Calls.json")] == ["+12125550100"]
    [deferred] = deferrals(table_app, canadian)
    assert deferred["rule"] == "Canada"
    assert deferred["reason"] == "Canada: calls only 10:00-18:00 local time; next at 2026-12-06T10:00-05:00"
    assert view(table_app, american)["status"] != "scheduled"


@pytest.mark.parametrize("phone,at,allowed,rule", [
    ("+14165550100", datetime(2026, 12, 7, 8, 30, tzinfo=ZoneInfo("America/Toronto")), False, "Canada"),
    ("+14165550100", datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("America/Toronto")), True, ""),
    ("+14165550100", datetime(2026, 12, 7, 21, 15, tzinfo=ZoneInfo("America/Toronto")), False, "federal"),
    ("+16045550100", datetime(2026, 12, 6, 9, 30, tzinfo=ZoneInfo("America/Vancouver")), False, "Canada"),
    ("+16045550100", datetime(2026, 12, 6, 17, 59, tzinfo=ZoneInfo("America/Vancouver")), True, ""),
])
def test_canadian_hours(services, phone, at, allowed, rule):
    rules, _ = load_rules(SHIPPED)
    with services.sessions() as s:
        verdict = gate.check(s, lead_in(phone), "call", at, rules)
    assert (verdict.allowed, verdict.rule) == (allowed, rule)


def test_a_country_rule_is_validated_with_file_and_line():
    text = ("federal: {window: '08:00-21:00', source: TCPA}\ncountries:\n  CA:\n    window: '09:00-21:30'\n"
            "  US: {window: '08:00-20:00', source: x}\n  Canada: {source: y}\n")
    _, errors = load_rules_text(text)
    assert [str(e) for e in errors] == [
        "calling_rules.yaml:3: countries.CA.source: required: cite the law or rule (a 'source:' line)",
        "calling_rules.yaml:5: countries.US: unknown key (expected a country's two-letter ISO code other than US, "
        "e.g. CA)",
        "calling_rules.yaml:6: countries.Canada: unknown key (expected a country's two-letter ISO code other than "
        "US, e.g. CA)"]


@pytest.mark.parametrize("phone,at,reason", [
    ("+13125550100", datetime(2031, 11, 27, 12, 0, tzinfo=CHICAGO),
     "holiday (Thanksgiving Day): no automated outreach"),
    ("+15045550100", datetime(2031, 2, 25, 12, 0, tzinfo=CHICAGO), "LA: no calls on Mardi Gras"),
    ("+14015550100", datetime(2031, 8, 11, 12, 0, tzinfo=NEW_YORK), "RI: no calls on Victory Day"),
    ("+14015550100", datetime(2032, 7, 5, 12, 0, tzinfo=NEW_YORK), "RI: no calls on Independence Day (observed)"),
])
def test_holidays_come_from_a_calendar_every_year_without_editing_the_table(services, phone, at, reason):
    """Thanksgiving, Mardi Gras and Victory Day move every year; the shipped table names no year for them."""
    rules, _ = load_rules(SHIPPED)
    with services.sessions() as s:
        verdict = gate.check(s, lead_in(phone), "call", at, rules)
        assert verdict.reason.split("; next at")[0] == reason
        assert gate.check(s, lead_in(phone), "call", at + timedelta(days=1), rules).allowed  # the day after


def test_a_holiday_calendar_is_validated_with_file_and_line():
    text = ("federal: {window: '08:00-21:00', source: TCPA}\nholidays:\n  - {calendar: US, only: Thanksgiving}\n"
            "  - {calendar: XX}\n  - {calendar: US, only: Festivus}\n  - {date: '01-01', calendar: US}\n")
    _, errors = load_rules_text(text)
    shown = [str(e) for e in errors]
    assert shown[0] == ("calling_rules.yaml:4: holidays[1].calendar: unknown calendar 'XX' (a country code, "
                        "e.g. US, or with a state: US-RI)")
    assert shown[1].startswith("calling_rules.yaml:5: holidays[2].only: 'Festivus' is not a holiday of US "
                               "(its names: Christmas Day, ")
    assert shown[2] == ("calling_rules.yaml:6: holidays[3]: give either a date or a calendar (e.g. calendar: "
                        "US-RI), not both")
    assert len(shown) == 3


def test_the_table_is_validated_with_file_and_line():
    text = ("federal:\n  window: '21:00-08:00'\n  source: TCPA\ntexts_per_day: -1\n"
            "holidays:\n  - {date: '2026-13-01', name: x}\n"
            "states:\n  FL:\n    window: '08:00-20:00'\n    days: {sunday: closed}\n  ZZ: {}\n")
    rules, errors = load_rules_text(text, "calling_rules.yaml")
    assert rules is None
    shown = [str(e) for e in errors]
    assert shown[0].startswith("calling_rules.yaml:2: federal.window: the window '21:00-08:00' must start")
    assert any(s.startswith("calling_rules.yaml:4: texts_per_day:") for s in shown)
    assert any(s.startswith("calling_rules.yaml:6: holidays[0].date:") for s in shown)
    assert any(s.startswith("calling_rules.yaml:8: states.FL.source: required") for s in shown)
    assert any(s.startswith("calling_rules.yaml:10: states.FL.days.sunday: unknown key") for s in shown)
    assert any(s.startswith("calling_rules.yaml:11: states.ZZ: unknown key") for s in shown)


def test_flows_check_covers_the_calling_rules(tmp_path, monkeypatch, capsys):
    for name in ("prequal.yaml", "roofing.yaml", "routing.yaml"):
        (tmp_path / name).write_text((SHIPPED.parent / name).read_text())
    broken = SHIPPED.read_text().replace('window: "08:00-21:00"', "window: 8")
    (tmp_path / "calling_rules.yaml").write_text(broken)
    monkeypatch.setenv("FLOWS_DIR", str(tmp_path))
    assert leadbot(["flows", "check"]) == 1
    out = capsys.readouterr().out
    assert "OK: 2 flow(s) valid (prequal, roofing)" in out
    assert "calling_rules.yaml:16: federal.window: expected a window like '08:00-21:00', got '8'" in out


def test_the_acknowledgement_text_passes_the_same_gate(tmp_path, db_url, redis_url, emulator, movable_clock):
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS=None,
                                           ACK_TEXT="true"))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    try:
        movable_clock.set_now(datetime(2026, 12, 2, 22, 30, tzinfo=CHICAGO))
        night = post(application, phone="+1 312 555 0100")
        drain(svc, rounds=1)  # the deferral and the acknowledgement job, not the 08:00 call
        assert emulator.of("/Messages.json") == []  # a text at 22:30 is outside the window too
        blocked = [e["data"] for e in view(application, night)["timeline"] if e["type"] == "blocked"]
        assert [(b["touch"], b["rule"]) for b in blocked] == [("ack_text", "federal")]
        movable_clock.set_now(datetime(2026, 12, 3, 10, 0, tzinfo=CHICAGO))
        post(application, phone="+1 312 555 0101")
        drain(svc, rounds=1)
        [text] = emulator.of("/Messages.json")
        assert text["form"]["Body"] == ("Thanks, Ada! We got your request and will call you in a moment. "
                                        "Reply STOP to opt out.")
    finally:
        runtime.use(None)
        svc.close()


def test_a_state_text_cap_is_stricter_than_the_daily_one(services):
    rules, errors = load_rules_text("federal: {window: '08:00-21:00', source: TCPA}\ntexts_per_day: 5\n"
                                    "states:\n  MD: {texts_per_24h: 2, source: Md. Code Com. Law 14-4501}\n")
    assert errors == []
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=NEW_YORK)
    with services.sessions() as s:
        lead = lead_in("+14105550100")  # Baltimore
        s.add(lead)
        s.flush()
        assert gate.check(s, lead, "sms", noon, rules).allowed
        for minutes in (90, 30):
            at = (noon - timedelta(minutes=minutes)).astimezone(UTC).replace(tzinfo=None)
            record(s, lead.id, "sms_sent", at=at)
        s.flush()
        verdict = gate.check(s, lead, "sms", noon, rules)
        assert verdict.rule == "MD"
        assert verdict.reason == "MD: 2 texts in 24 h reached; next at 2026-12-04T10:30-05:00"
        assert gate.check(s, lead, "call", noon, rules).allowed  # calls are not capped there


@pytest.fixture
def ack_app(tmp_path, db_url, redis_url, emulator):  # noqa: ANN001, ANN201
    """The shipped calling rules, and ACK_TEXT on."""
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS=None,
                                           ACK_TEXT="true"))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    yield application
    runtime.use(None)
    svc.close()


def test_a_call_deferred_by_the_florida_cap_gets_no_acknowledgement_text(ack_app, emulator,
                                                                          movable_clock):
    """Florida counts a text as a call: after 3 calls today the acknowledgement would be a fourth
    contact, so it is not sent, and the timeline says which rule stopped it."""
    svc = ack_app.extensions["leadbot"]
    now = datetime(2026, 12, 2, 14, 0, tzinfo=NEW_YORK)  # a Wednesday, in Miami
    movable_clock.set_now(now)
    with svc.sessions() as s:  # an earlier request from this number was called three times today
        earlier = lead_in("+13055550100", created_at=(now - timedelta(hours=4)).astimezone(UTC)
                          .replace(tzinfo=None))
        s.add(earlier)
        s.flush()
        for hours in (3, 2, 1):
            at = (now - timedelta(hours=hours)).astimezone(UTC).replace(tzinfo=None)
            record(s, earlier.id, "dialing", at=at)
        s.commit()
    lead_id = post(ack_app, phone="+1 305 555 0100", service="gutters")
    drain(svc, rounds=1)
    assert emulator.of("/Calls.json") == []
    [deferred] = deferrals(ack_app, lead_id)
    assert deferred["reason"] == "FL: 3 calls in 24 h reached; next at 2026-12-03T11:00-05:00"
    assert emulator.of("/Messages.json") == []
    blocked = [e["data"] for e in view(ack_app, lead_id)["timeline"] if e["type"] == "blocked"]
    assert [(b["touch"], b["rule"]) for b in blocked] == [("ack_text", "FL")]


def test_no_acknowledgement_before_hawaii_wakes_up_and_none_late(ack_app, emulator, movable_clock):
    """At 6:00 in Honolulu a text is outside the window too: the acknowledgement is not sent, then or at
    8:00 (it would come with the call itself); the timeline says why."""
    svc = ack_app.extensions["leadbot"]
    honolulu = ZoneInfo("Pacific/Honolulu")
    movable_clock.set_now(datetime(2026, 12, 2, 6, 0, tzinfo=honolulu))
    lead_id = post(ack_app, phone="+1 808 555 0100")
    drain(svc, rounds=1)
    assert emulator.of("/Messages.json") == [] and emulator.of("/Calls.json") == []
    blocked = [e["data"] for e in view(ack_app, lead_id)["timeline"] if e["type"] == "blocked"]
    assert [(b["touch"], b["reason"]) for b in blocked] == [
        ("ack_text", "federal: calls only 08:00-21:00 local time; next at 2026-12-02T08:00-10:00")]
    movable_clock.set_now(datetime(2026, 12, 2, 8, 0, tzinfo=honolulu))
    drain(svc)
    assert len(emulator.of("/Calls.json")) == 1 and emulator.of("/Messages.json") == []


def test_a_state_that_allows_no_automated_call_tells_the_managers(tmp_path, db_url, redis_url, emulator,
                                                                movable_clock):
    """A cap of 0 (staff may set one) fails the lead for good: a person must call, so the managers
    get the 'Unreachable lead' email naming the rule, instead of a status nobody reads."""
    from sqlalchemy import select

    from bot.store.handoff_tables import MailOutbox

    folder = tmp_path / "flows"
    shutil.copytree(SHIPPED.parent, folder)
    rules = SHIPPED.read_text().replace("states:\n", "states:\n  NJ: {calls_per_24h: 0, source: a test}\n", 1)
    (folder / "calling_rules.yaml").write_text(rules)
    application = create_app(make_settings(tmp_path, db_url, redis_url, emulator.url, CALLING_HOURS=None,
                                           FLOWS_DIR=str(folder)))
    svc = application.extensions["leadbot"]
    runtime.use(svc)
    try:
        movable_clock.set_now(datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK))
        lead_id = post(application, phone="+1 201 555 0100")  # Jersey City
        drain(svc)
        assert emulator.of("/Calls.json") == []
        with svc.sessions() as s:
            lead = s.get_one(Lead, lead_id)
            mails = s.scalars(select(MailOutbox).where(MailOutbox.lead_id == lead_id)).all()
        assert (lead.status, lead.status_reason) == ("failed", "NJ: no automated call allowed")
        assert [m.kind for m in mails] == ["unreachable"]
        assert "NJ: no automated call allowed" in mails[0].body
        assert "a person must follow it up" in mails[0].body
        assert mails[0].subject.endswith("- no automated contact allowed")
    finally:
        runtime.use(None)
        svc.close()


def test_a_retry_after_the_window_closed_is_held_not_dialled(table_app, emulator, movable_clock):
    """Twilio answers 503 at 20:59:50; RQ's retry runs at 21:00:30: outside the window, so it waits
    for the morning like any deferred lead (it used to dial, the gate never asked again)."""
    svc = table_app.extensions["leadbot"]
    movable_clock.set_now(datetime(2026, 12, 2, 20, 59, 50, tzinfo=NEW_YORK))
    emulator.script("call", (503, {"code": 20500, "message": "Service Unavailable", "status": 503}))
    lead_id = post(table_app, phone="+1 212 555 0100")
    drain(svc, rounds=1)  # the first try; RQ schedules its retry
    assert len(emulator.of("/Calls.json")) == 1
    movable_clock.set_now(datetime(2026, 12, 2, 21, 0, 30, tzinfo=NEW_YORK))
    drain(svc, rounds=1)  # the retry
    assert len(emulator.of("/Calls.json")) == 1
    with svc.sessions() as s:
        lead = s.get_one(Lead, lead_id)
    assert lead.status == "scheduled" and "next at 2026-12-03T08:00-05:00" in lead.status_reason


@pytest.mark.parametrize("phone, rule", [("+14105550100", "MD"), ("+13055550100", "FL")])
def test_calls_and_texts_share_a_states_cap(services, phone, rule):
    """Maryland allows 3 calls or texts in 24 h, and Florida counts a text as a call: after 3 calls,
    no text either (each channel's own cap used to allow 3 + 3)."""
    rules, errors = load_rules(SHIPPED)
    assert errors == []
    noon = datetime(2026, 12, 3, 12, 0, tzinfo=NEW_YORK)
    with services.sessions() as s:
        lead = lead_in(phone)
        s.add(lead)
        s.flush()
        record(s, lead.id, "dialing", at=(noon - timedelta(minutes=90)).astimezone(UTC).replace(tzinfo=None))
        record(s, lead.id, "sms_sent", at=(noon - timedelta(minutes=60)).astimezone(UTC).replace(tzinfo=None))
        s.flush()
        assert gate.check(s, lead, "sms", noon, rules).allowed  # 2 contacts so far
        record(s, lead.id, "dialing", at=(noon - timedelta(minutes=30)).astimezone(UTC).replace(tzinfo=None))
        s.flush()
        verdict = gate.check(s, lead, "sms", noon, rules)
        assert (verdict.allowed, verdict.rule) == (False, rule)
        assert verdict.reason.startswith(f"{rule}: 3 calls and texts in 24 h reached; next at 2026-12-04T10:30")
        assert not gate.check(s, lead, "call", noon, rules).allowed


class SlowTurn:
    """A TWILIO_CPS limiter whose turn comes `seconds` later, while `meanwhile` happens."""

    def __init__(self, clock, seconds: float, meanwhile=None) -> None:  # noqa: ANN001
        self.clock, self.seconds, self.meanwhile = clock, seconds, meanwhile

    def acquire(self, level: str | None = None) -> float:
        self.clock.set_now(self.clock.now() + timedelta(seconds=self.seconds))
        if self.meanwhile:
            self.meanwhile()
        return self.seconds


def test_a_call_whose_turn_comes_after_the_window_closed_is_held(table_app, emulator, movable_clock):
    """Checked at 20:59:57, its TWILIO_CPS turn at 21:00:02: the gate is asked again after the wait."""
    svc = table_app.extensions["leadbot"]
    svc.twilio.http_client.limiter = SlowTurn(movable_clock, 5)
    movable_clock.set_now(datetime(2026, 12, 2, 20, 59, 57, tzinfo=NEW_YORK))
    lead_id = post(table_app, phone="+1 212 555 0100")
    drain(svc, rounds=1)
    assert emulator.of("/Calls.json") == []
    with svc.sessions() as s:
        lead = s.get_one(Lead, lead_id)
    assert lead.status == "scheduled" and lead.status_reason.startswith("federal:"), lead.status_reason


def test_a_stop_that_comes_while_a_call_waits_for_its_turn_blocks_it(table_app, emulator, movable_clock):
    from bot.compliance.optout import opt_out

    svc = table_app.extensions["leadbot"]

    def stop_texted() -> None:
        with svc.sessions() as s:
            opt_out(s, "+12125550100", "sms")
            s.commit()

    svc.twilio.http_client.limiter = SlowTurn(movable_clock, 1, stop_texted)
    movable_clock.set_now(datetime(2026, 12, 2, 12, 0, tzinfo=NEW_YORK))
    lead_id = post(table_app, phone="+1 212 555 0100")
    drain(svc, rounds=1)
    assert emulator.of("/Calls.json") == []
    with svc.sessions() as s:
        assert s.get_one(Lead, lead_id).status == "opted_out"
