"""Live warm transfer end to end: the app's signed webhooks, the loopback Twilio emulator, real RQ jobs."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.store.handoff_tables import Handoff, Transfer
from bot.store.tables import Lead
from bot.twilio.twiml_player import last, parse_twiml
from tests.conftest import PUBLIC
from tests.handoff.live import (
    ALICE,
    BOB,
    CARA,
    event,
    events,
    make_lead,
    rep_leg,
    run_jobs,
    scheduled,
    start_transfer,
    twilio_post,
)


def transfer_row(services, lead_id: str) -> Transfer:  # noqa: ANN001
    with services.sessions() as s:
        return s.scalars(select(Transfer).where(Transfer.lead_id == lead_id)).one()


def tries(services, lead_id: str) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
    with services.sessions() as s:
        rows = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id).order_by(Handoff.created_at,
                                                                                    Handoff.try_number))
        return [(h.rep_name, h.mode, h.status) for h in rows]


def lead_status(services, lead_id: str) -> str:  # noqa: ANN001
    with services.sessions() as s:
        return s.get(Lead, lead_id).status


def test_rep_presses_1_and_joins_the_prospects_conference(client, services, emulator):
    lead_id = make_lead(services)
    verbs = start_transfer(services, lead_id)

    # The prospect's TwiML: the closing line, then a named conference with hold music, waiting for a rep.
    assert [v["verb"] for v in verbs] == ["Say", "Dial"]
    conf = verbs[1]["children"][0]
    t = transfer_row(services, lead_id)
    assert conf["verb"] == "Conference" and conf["text"] == t.conference
    assert conf["startConferenceOnEnter"] == "false" and conf["endConferenceOnExit"] == "true"
    assert conf["waitUrl"] == f"{PUBLIC}/twilio/handoff/hold/{t.id}?n=1" and conf["waitMethod"] == "POST"
    assert conf["statusCallback"] == f"{PUBLIC}/twilio/handoff/conference/{t.id}"
    assert conf["statusCallbackEvent"] == "start end join leave"
    assert lead_status(services, lead_id) == "transferring"
    assert emulator.of("/Calls.json") == []  # no REST call inside the prospect's webhook

    # While waiting, the prospect hears a message and music, then the hold webhook again: never silence.
    hold = twilio_post(client, services, conf["waitUrl"], {"CallSid": "CAprospect"})
    assert hold.status_code == 200
    assert "connect you with a specialist" in hold.get_data(as_text=True)
    assert "<Play>" in hold.get_data(as_text=True) and "hold/" + t.id + "?n=2" in hold.get_data(as_text=True)

    run_jobs(services)
    dialed = emulator.of("/Calls.json")
    assert len(dialed) == 1
    form, multi = dialed[0]["form"], dialed[0]["multi"]
    assert form["To"] == ALICE and form["From"] == services.settings.caller_id
    with services.sessions() as s:
        first = s.scalars(select(Handoff).where(Handoff.lead_id == lead_id)).one()
    assert form["Url"] == f"{PUBLIC}/twilio/handoff/whisper/{first.id}"
    assert form["StatusCallback"] == f"{PUBLIC}/twilio/handoff/rep-status/{first.id}"
    assert multi["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == "Enable" and form["Timeout"] == "20"
    assert f"handoff-watch-{first.id}" in scheduled(services)

    # Alice answers: the whisper names the prospect, the service and the answers, then asks for a key.
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])
    whisper = " ".join(leg.heard)
    assert "Maria Lopez" in whisper and "roofing" in whisper
    assert "Budget: $12,000." in whisper and "Timing: right away." in whisper and "Authority: me." in whisper
    assert "Press 1 to take the call now, or 2 to pass." in whisper
    gather = last(leg.verbs, "Gather")
    assert gather["numDigits"] == "1" and gather["actionOnEmptyResult"] == "true"

    # She presses 1 and joins the same conference, which starts (hold music stops) and ends when she leaves.
    verbs = leg.reply(digits="1")
    rep_conf = last(verbs, "Conference")
    assert rep_conf["text"] == t.conference
    assert rep_conf["startConferenceOnEnter"] == "true" and rep_conf["endConferenceOnExit"] == "true"
    assert f"handoff-watch-{first.id}" not in scheduled(services)
    conf_url = f"{PUBLIC}/twilio/handoff/conference/{t.id}"
    for params in ({"StatusCallbackEvent": "participant-join", "CallSid": "CAprospect"},
                   {"StatusCallbackEvent": "conference-start", "CallSid": call["sid"]},
                   {"StatusCallbackEvent": "participant-join", "CallSid": call["sid"]}):
        assert twilio_post(client, services, conf_url, params).status_code == 204
    assert transfer_row(services, lead_id).status == "connected"
    assert lead_status(services, lead_id) == "handed_off"
    assert tries(services, lead_id) == [("Alice Able", "warm_transfer", "acked")]
    assert events(services, lead_id).count("transfer_accepted") == 1

    # The bot is out of the media path: nobody redirects or hangs up either leg, nothing else is dialled.
    assert [r["path"] for r in emulator.requests if "/Calls/" in r["path"]] == []
    assert len(emulator.of("/Calls.json")) == 1

    rep_left = {"StatusCallbackEvent": "participant-leave", "CallSid": call["sid"]}
    twilio_post(client, services, conf_url, rep_left)
    twilio_post(client, services, conf_url, {"StatusCallbackEvent": "conference-end", "CallSid": ""})
    assert transfer_row(services, lead_id).status == "ended"
    assert events(services, lead_id) == [
        "handoff_matched", "transfer_started", "rep_dialing", "transfer_accepted", "handoff_acked",
        "transfer_connected", "transfer_ended"]
    assert event(services, lead_id, "handoff_matched")["why"]["rule"] == "round_robin"
    assert event(services, lead_id, "handoff_matched")["fallbacks"] == ["Bob Baker", "Cara Cole", "Dan Dorn"]
    assert event(services, lead_id, "handoff_acked")["via"] == "transfer"


def dialled(emulator) -> list[str]:  # noqa: ANN001
    return [r["form"]["To"] for r in emulator.of("/Calls.json")]


def rep_status(client, services, handoff_id: str, status: str, **extra: str):  # noqa: ANN001, ANN201
    params = {"CallSid": extra.pop("CallSid", "CArep"), "CallStatus": status, **extra}
    return twilio_post(client, services, f"{PUBLIC}/twilio/handoff/rep-status/{handoff_id}", params)


def try_ids(services, lead_id: str) -> list[str]:  # noqa: ANN001
    with services.sessions() as s:
        rows = s.scalars(select(Handoff.id).where(Handoff.lead_id == lead_id).order_by(Handoff.try_number))
        return list(rows)


def test_rep_no_answer_then_voicemail_then_pass_moves_down_the_list(client, services, emulator):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    alice, = try_ids(services, lead_id)
    leg, call = rep_leg(client, services, emulator, ALICE)
    for status in ("initiated", "ringing", "no-answer"):
        assert rep_status(client, services, alice, status, CallSid=call["sid"]).status_code == 204
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB]

    # Bob's voicemail picks up: answering-machine detection says so before any whisper is played.
    leg, call = rep_leg(client, services, emulator, BOB)
    verbs = leg.answer(call["url"], answered_by="machine_start")
    assert [v["verb"] for v in verbs] == ["Hangup"] and leg.heard == []
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB, CARA]

    # Cara hears the whisper but passes.
    leg, call = rep_leg(client, services, emulator, CARA)
    leg.answer(call["url"])
    leg.reply(digits="2")
    assert "No problem, we'll offer it to someone else. Goodbye." in leg.heard
    assert tries(services, lead_id) == [("Alice Able", "warm_transfer", "declined"),
                                        ("Bob Baker", "warm_transfer", "declined"),
                                        ("Cara Cole", "warm_transfer", "declined"),
                                        ("Alice Able", "sms", "open")]
    assert events(services, lead_id, "rep_") == ["rep_dialing", "rep_no_answer", "rep_dialing",
                                                 "rep_voicemail", "rep_dialing", "rep_declined"]
    # Three tries (the default limit): Dan is never dialled. The prospect is told when to expect a call ...
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB, CARA]
    t = transfer_row(services, lead_id)
    assert t.status == "failed"
    told = [r["form"] for r in emulator.requests if r["path"].endswith("/Calls/CAprospect.json")]
    assert told == [{"Url": f"{PUBLIC}/twilio/handoff/after/{t.id}", "Method": "POST"}]
    # Twilio fetches the new Url for the prospect's call: they hear when Alice will call, then goodbye.
    params = {"CallSid": "CAprospect", "CallStatus": "in-progress"}
    closing = twilio_post(client, services, told[0]["Url"], params)
    verbs = parse_twiml(closing.get_data(as_text=True))
    assert [v["verb"] for v in verbs] == ["Say", "Hangup"] and verbs[0]["voice"] == "Polly.Joanna"
    assert "Alice will call you back within 5 minutes" in verbs[0]["text"]
    # ... and the best match gets the SMS handoff with why.
    texts = [m for m in emulator.messages if m["to"] == ALICE]
    assert len(texts) == 1 and texts[0]["body"].startswith("Live transfer missed: no rep picked up\n")
    assert lead_status(services, lead_id) == "qualified"
    assert "transfer_failed" in events(services, lead_id) and "prospect_told" in events(services, lead_id)


def test_no_key_after_the_whisper_counts_as_voicemail(client, services, emulator):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])
    verbs = leg.reply()  # the Gather times out: Twilio posts with no Digits
    assert [v["verb"] for v in verbs] == ["Hangup"]
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB]
    assert event(services, lead_id, "rep_voicemail")["reason"] == "no key pressed after the whisper"


def test_watchdog_gives_up_on_a_silent_leg_and_hangs_it_up(client, services, emulator):
    from tests.handoff.live import fire

    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    alice, = try_ids(services, lead_id)
    sid = emulator.calls[next(iter(emulator.calls))]["sid"]
    fire(services, f"handoff-watch-{alice}")  # no status callback ever came
    assert dialled(emulator) == [ALICE, BOB]
    hangups = [r for r in emulator.requests if r["path"].endswith(f"/Calls/{sid}.json")]
    assert [r["form"] for r in hangups] == [{"Status": "completed"}]
    assert event(services, lead_id, "rep_no_answer")["reason"] == "no answer within 80s"
    # The real no-answer callback arriving late changes nothing.
    rep_status(client, services, alice, "no-answer", CallSid=sid)
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB]


def test_prospect_hangs_up_on_hold_rep_leg_cancelled_and_sms_says_when(client, services, emulator):
    from datetime import timedelta

    from sqlalchemy import update

    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    t = transfer_row(services, lead_id)
    with services.sessions() as s:  # the prospect has been holding for 42 seconds
        earlier = t.created_at - timedelta(seconds=42)
        s.execute(update(Transfer).where(Transfer.id == t.id).values(created_at=earlier))
        s.commit()
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])  # Alice is listening to the whisper when the prospect gives up
    conf_url = f"{PUBLIC}/twilio/handoff/conference/{t.id}"
    for _ in range(2):  # delivered twice
        resp = twilio_post(client, services, conf_url, {"StatusCallbackEvent": "participant-leave",
                                                        "CallSid": "CAprospect"})
        assert resp.status_code == 204
    # The <Dial> action and the conference end arrive too: nothing more happens.
    after = twilio_post(client, services, f"{PUBLIC}/twilio/handoff/after/{t.id}",
                        {"CallSid": "CAprospect", "CallStatus": "completed"})
    assert after.status_code == 200
    twilio_post(client, services, conf_url, {"StatusCallbackEvent": "conference-end", "CallSid": ""})
    run_jobs(services)

    assert transfer_row(services, lead_id).status == "abandoned"
    hangups = [r["form"] for r in emulator.requests if r["path"].endswith(f"/Calls/{call['sid']}.json")]
    assert hangups == [{"Status": "completed"}]
    assert dialled(emulator) == [ALICE]
    texts = [m["body"] for m in emulator.messages]
    # 42 s on hold when the test began; the test itself may take a second or two.
    assert len(texts) == 1
    assert re.match(r"Prospect hung up at 00:4[234]\nNew lead for Alice: Maria Lopez", texts[0])
    assert tries(services, lead_id) == [("Alice Able", "warm_transfer", "cancelled"),
                                        ("Alice Able", "sms", "open")]
    assert event(services, lead_id, "prospect_hung_up")["reason"] == texts[0].split("\n")[0]
    assert events(services, lead_id).count("rep_leg_cancelled") == 1
    # Alice presses 1 a moment later: she is told the caller is gone, and nothing is joined.
    verbs = leg.reply(digits="1")
    assert [v["verb"] for v in verbs] == ["Say", "Hangup"] and "no longer waiting" in verbs[0]["text"]
    assert lead_status(services, lead_id) == "qualified"


def test_duplicate_and_out_of_order_callbacks_dial_each_rep_once(client, services, emulator):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    run_jobs(services)
    from handoff import jobs

    alice, = try_ids(services, lead_id)
    assert jobs.dial_rep(alice) == "skipped"  # a duplicate delivery of the dial job
    leg, call = rep_leg(client, services, emulator, ALICE)
    # completed arrives before no-answer, then both again, then a stale ringing
    for status in ("completed", "no-answer", "completed", "no-answer", "ringing"):
        rep_status(client, services, alice, status, CallSid=call["sid"])
    leg.answer(call["url"])  # a whisper request after the leg already counted as passed
    assert "no longer waiting" in " ".join(leg.heard)
    run_jobs(services)
    assert dialled(emulator) == [ALICE, BOB]
    assert events(services, lead_id, "rep_") == ["rep_dialing", "rep_declined", "rep_dialing"]
    bob = try_ids(services, lead_id)[1]
    assert jobs.dial_rep(bob) == "skipped"
    assert jobs.watch_rep(alice) == "skipped"
    assert dialled(emulator) == [ALICE, BOB]


def test_only_one_rep_can_accept(client, services, emulator):
    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    run_jobs(services)
    alice, = try_ids(services, lead_id)
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])
    assert last(leg.reply(digits="1"), "Conference") is not None
    # Her key press delivered again joins the same conference again; no second acceptance is recorded.
    again = twilio_post(client, services, f"{PUBLIC}/twilio/handoff/keys/{alice}",
                        {**leg.params, "Digits": "1"})
    assert f">{transfer_row(services, lead_id).conference}</Conference>" in again.get_data(as_text=True)
    # Then a late "completed" for her leg: still accepted, nobody else dialled.
    rep_status(client, services, alice, "completed", CallSid=call["sid"])
    run_jobs(services)
    assert dialled(emulator) == [ALICE]
    assert tries(services, lead_id) == [("Alice Able", "warm_transfer", "acked")]
    assert events(services, lead_id).count("transfer_accepted") == 1


def test_real_flow_qualified_prospect_is_transferred_live(client, services, emulator, roster_path):
    """From POST /leads to a rep in the conference: dispatch, the prequal flow, the handoff."""
    from bot.twilio.twiml_player import CallLeg
    from tests.conftest import API_KEY, drain, lead_body
    from tests.handoff.live import poster

    roster_path.write_text(roster_path.read_text().replace("[roofing]", "[kitchen remodel]"))
    resp = client.post("/leads", json=lead_body(service="kitchen remodel"),
                       headers={"Authorization": f"Bearer {API_KEY}"})
    lead_id = resp.get_json()["id"]
    drain(services)  # the contact job calls the prospect
    call = emulator.of("/Calls.json")[-1]["form"]
    prospect_sid = next(iter(emulator.calls))
    prospect = CallLeg(poster(client), services.webhook_token,
                       {"CallSid": prospect_sid, "From": call["From"], "To": call["To"]})
    prospect.answer(call["Url"])
    prospect.reply(speech="Yes.")
    prospect.reply(speech="about twelve thousand dollars")
    prospect.reply(speech="right away")
    verbs = prospect.reply(digits="1")  # "me": the prospect decides
    assert "Please hold while I connect you with a specialist." in prospect.heard[-1]
    conf = last(verbs, "Conference")
    t = transfer_row(services, lead_id)
    assert conf["text"] == t.conference and t.prospect_call_sid == prospect_sid
    assert not prospect.ended

    run_jobs(services)
    rep, rep_call = rep_leg(client, services, emulator, ALICE)
    rep.answer(rep_call["url"])
    whisper = " ".join(rep.heard)
    assert "Ada Lovelace, about kitchen remodel." in whisper and "Budget: $12,000." in whisper
    assert last(rep.reply(digits="1"), "Conference")["text"] == t.conference
    twilio_post(client, services, f"{PUBLIC}/twilio/handoff/conference/{t.id}",
                {"StatusCallbackEvent": "participant-join", "CallSid": rep_call["sid"]})
    assert transfer_row(services, lead_id).status == "connected"
    view = client.get(f"/leads/{lead_id}", headers={"Authorization": f"Bearer {API_KEY}"}).get_json()
    assert view["status"] == "handed_off"
    assert [(h["rep"], h["mode"], h["status"]) for h in view["handoff"]] == [
        ("Alice Able", "warm_transfer", "acked")]
    kinds = [e["type"] for e in view["timeline"]]
    assert kinds[kinds.index("outcome"):] == ["outcome", "qualified", "handoff_matched", "transfer_started",
                                              "rep_dialing", "transfer_accepted", "handoff_acked",
                                              "transfer_connected"]


def test_hold_webhook_redials_when_the_dial_job_was_lost(client, services, emulator):
    from datetime import timedelta

    from rq.job import Job
    from sqlalchemy import update

    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    alice, = try_ids(services, lead_id)
    Job.fetch(f"handoff-dial-{alice}", connection=services.redis).delete()  # Redis lost it
    t = transfer_row(services, lead_id)
    hold_url = f"{PUBLIC}/twilio/handoff/hold/{t.id}?n=3"
    assert twilio_post(client, services, hold_url, {"CallSid": "CAprospect"}).status_code == 200
    run_jobs(services)
    assert dialled(emulator) == []  # a few seconds' delay is normal: nothing is re-sent yet
    with services.sessions() as s:
        earlier = s.get(Handoff, alice).created_at - timedelta(seconds=30)
        s.execute(update(Handoff).where(Handoff.id == alice).values(created_at=earlier))
        s.commit()
    resp = twilio_post(client, services, hold_url, {"CallSid": "CAprospect"})
    assert "still connecting you" in resp.get_data(as_text=True)
    run_jobs(services)
    assert dialled(emulator) == [ALICE]


def test_a_transfer_starting_in_a_redis_outage_still_holds_the_prospect_and_dials_when_it_is_back(
        client, services, emulator, valkey):
    from datetime import timedelta

    from sqlalchemy import update

    lead_id = make_lead(services)
    valkey.stop()  # no rotation, no dial job: the prospect must still be put on hold, not dropped
    try:
        verbs = start_transfer(services, lead_id)
    finally:
        valkey.start()
    services.redis.connection_pool.reset()
    services.redis.connection_pool.connection_kwargs["port"] = valkey.port  # it may come back on a new port
    services.redis.flushall()
    assert [v["verb"] for v in verbs] == ["Say", "Dial"] and verbs[1]["children"][0]["verb"] == "Conference"
    first, = try_ids(services, lead_id)
    with services.sessions() as s:
        rep_phone = s.get(Handoff, first).rep_phone
        earlier = s.get(Handoff, first).created_at - timedelta(seconds=30)
        s.execute(update(Handoff).where(Handoff.id == first).values(created_at=earlier))
        s.commit()
    t = transfer_row(services, lead_id)
    hold_url = f"{PUBLIC}/twilio/handoff/hold/{t.id}?n=3"
    resp = twilio_post(client, services, hold_url, {"CallSid": "CAprospect"})
    assert "still connecting you" in resp.get_data(as_text=True)
    run_jobs(services)
    assert dialled(emulator) == [rep_phone]


def test_hold_webhook_ends_the_hold_when_that_job_was_lost(client, services, emulator):
    from datetime import timedelta

    from rq.job import Job
    from sqlalchemy import update

    lead_id = make_lead(services)
    start_transfer(services, lead_id)
    for _ in range(3):  # the default three tries: every rep's phone rings out
        run_jobs(services)
        last_try = try_ids(services, lead_id)[-1]
        assert rep_status(client, services, last_try, "no-answer", CallSid="CArep").status_code == 204
    t = transfer_row(services, lead_id)
    assert t.status == "failed"
    Job.fetch(f"transfer-end-{t.id}", connection=services.redis).delete()  # Redis lost it
    hold_url = f"{PUBLIC}/twilio/handoff/hold/{t.id}?n=5"
    assert twilio_post(client, services, hold_url, {"CallSid": "CAprospect"}).status_code == 200
    run_jobs(services)

    def told() -> list[dict[str, str]]:
        return [r["form"] for r in emulator.requests if r["path"].endswith("/Calls/CAprospect.json")]

    assert told() == []  # it only just failed: the job may still be on its way
    with services.sessions() as s:
        earlier = t.ended_at - timedelta(seconds=30)
        s.execute(update(Transfer).where(Transfer.id == t.id).values(ended_at=earlier))
        s.commit()
    assert twilio_post(client, services, hold_url, {"CallSid": "CAprospect"}).status_code == 200
    run_jobs(services)
    assert told() == [{"Url": f"{PUBLIC}/twilio/handoff/after/{t.id}", "Method": "POST"}]
    assert twilio_post(client, services, hold_url, {"CallSid": "CAprospect"}).status_code == 200
    run_jobs(services)
    assert len(told()) == 1  # its job is in Redis now (finished): not sent again


def test_a_prospect_calling_back_whose_rep_takes_it_live_is_not_reassigned_at_the_sla(client, services,
                                                                                      emulator):
    """Alice holds the lead by text; the prospect calls our number and is put through; she presses 1.
    Her text offer is acknowledged by that call: at its SLA nobody else is told the lead is theirs."""
    from bot.channels.inbound import inbound
    from tests.handoff.live import sms_handoff

    lead_id = sms_handoff(services)
    run_jobs(services)
    assert tries(services, lead_id) == [("Alice Able", "sms", "open")]
    with services.sessions() as s:
        sms_id = s.scalar(select(Handoff.id).where(Handoff.lead_id == lead_id))
    inbound(services, "+15125550100", "CAcallback")
    run_jobs(services)
    leg, call = rep_leg(client, services, emulator, ALICE)
    leg.answer(call["url"])
    leg.reply(digits="1")
    run_jobs(services)
    assert f"handoff-escalate-{sms_id}" not in scheduled(services)
    assert tries(services, lead_id) == [("Alice Able", "sms", "acked"), ("Alice Able", "warm_transfer", "acked")]
    texts_to_bob = [m for m in emulator.messages if m["to"] == BOB]
    assert texts_to_bob == []
    assert lead_status(services, lead_id) == "handed_off"
