"""The rep's lead page: a signed, expiring link with no password; its buttons act like the rep's texts."""

from __future__ import annotations

import re

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from bot.runtime.replinks import SALT, make_token, read_token
from bot.store.handoff_tables import Handoff
from tests.handoff.live import ALICE, BOB, event, events, make_lead, run_jobs
from tests.handoff.test_ladder import hand_off, texts_to


def the_link(services, emulator, lead_id: str) -> str:  # noqa: ANN001
    hand_off(services, lead_id)
    run_jobs(services)
    (text,) = texts_to(emulator, ALICE)
    return re.search(r"http://leadbot.test(/console/r/\S+)", text).group(1)


def rows(services, lead_id: str) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
    with services.sessions() as s:
        return [
            (h.rep_name, h.status, h.reason)
            for h in s.scalars(select(Handoff).where(Handoff.lead_id == lead_id).order_by(Handoff.try_number))
        ]


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_link_opens_only_that_lead_without_a_password(client, services, emulator):
    lead_id = make_lead(services, name="<b>Maria</b> {{7*7}}")
    path = the_link(services, emulator, lead_id)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "&lt;b&gt;Maria&lt;/b&gt; {{7*7}}" in html and 'href="tel:+15125550100"' in html
    assert "Budget" in html and "I called them" in html and "Can't take it" in html
    assert lead_id not in html  # the page and link never name the lead's id


def test_forged_tampered_or_expired_links_are_refused(client, services, emulator):
    lead_id = make_lead(services)
    path = the_link(services, emulator, lead_id)
    token = path.rsplit("/", 1)[1]
    assert client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 404
    other = TimestampSigner("not-the-secret", salt=SALT).sign(token.split(".")[0].encode()).decode()
    assert client.get(f"/console/r/{other}").status_code == 404
    hid = read_token(services.settings.secret_key, token)
    assert read_token(services.settings.secret_key, make_token(services.settings.secret_key, hid)) == hid
    assert client.get(path).status_code == 200
    forged = client.get(f"/console/r/{other}")
    assert "This link is not valid" in forged.get_data(as_text=True)


def test_a_link_older_than_rep_link_hours_shows_that_it_expired(client, services, emulator, movable_clock):
    from datetime import timedelta

    assert services.settings.rep_link_hours == 7 * 24  # the default: a week
    lead_id = make_lead(services)
    path = the_link(services, emulator, lead_id)
    movable_clock.advance(timedelta(days=7) - timedelta(minutes=1))
    fresh = client.get(path)
    assert fresh.status_code == 200
    movable_clock.advance(timedelta(minutes=2))
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 410 and page.headers["Cache-Control"] == "no-store"
    assert "This link has expired" in html and "Maria Lopez" not in html and "I called them" not in html
    token = csrf(fresh.get_data(as_text=True))
    assert client.post(path + "/ack", data={"csrf_token": token}).status_code == 410
    assert rows(services, lead_id)[0][1] == "open"


def test_rep_link_hours_sets_the_lifetime(services, settings, emulator, movable_clock):
    from datetime import timedelta

    from app import create_app

    path = the_link(services, emulator, make_lead(services))
    short = create_app(settings.model_copy(update={"rep_link_hours": 2}))  # as REP_LINK_HOURS=2 would
    try:
        client = short.test_client()
        movable_clock.advance(timedelta(hours=1, minutes=59))
        assert client.get(path).status_code == 200
        movable_clock.advance(timedelta(minutes=2))
        assert client.get(path).status_code == 410
    finally:
        short.extensions["leadbot"].close()


def test_rep_link_hours_must_be_positive():
    import pytest
    from pydantic import ValidationError

    from bot.settings import Settings

    assert Settings(REP_LINK_HOURS="12").rep_link_hours == 12
    with pytest.raises(ValidationError, match="REP_LINK_HOURS"):
        Settings(REP_LINK_HOURS="0")


def test_i_called_them_acknowledges_like_a_text_reply(client, services, emulator):
    lead_id = make_lead(services)
    path = the_link(services, emulator, lead_id)
    page = client.get(path).get_data(as_text=True)
    assert client.post(path + "/ack").status_code == 400  # no CSRF token: refused
    resp = client.post(path + "/ack", data={"csrf_token": csrf(page)})
    assert resp.status_code == 302
    assert rows(services, lead_id) == [("Alice Able", "acked", None)]
    assert events(services, lead_id)[-1] == "handoff_acked"
    after = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Marked as called" in after and "I called them" not in after
    again = client.post(path + "/ack", data={"csrf_token": csrf(page)})
    assert "done=stale" in again.headers["Location"]


def test_cant_take_it_passes_the_lead_to_the_next_rep(client, services, emulator):
    lead_id = make_lead(services)
    path = the_link(services, emulator, lead_id)
    page = client.get(path).get_data(as_text=True)
    client.post(path + "/pass", data={"csrf_token": csrf(page)})
    assert rows(services, lead_id) == [
        ("Alice Able", "declined", "Alice Able couldn't take it"),
        ("Bob Baker", "open", "Alice Able couldn't take it"),
    ]
    run_jobs(services)
    (text,) = texts_to(emulator, BOB)
    assert text.startswith("Alice Able couldn't take it\nNew lead for Bob: Maria Lopez")
    assert "rep_declined" in events(services, lead_id) and "handoff_reassigned" in events(services, lead_id)


def test_cant_take_it_with_nobody_left_puts_the_lead_on_the_unassigned_list(client, services, emulator,
                                                                               roster_path):
    roster_path.write_text(roster_path.read_text().split("  - {name: Bob Baker")[0])  # Alice alone
    lead_id = make_lead(services)
    path = the_link(services, emulator, lead_id)
    page = client.get(path).get_data(as_text=True)
    client.post(path + "/pass", data={"csrf_token": csrf(page)})
    assert rows(services, lead_id) == [("Alice Able", "declined", "Alice Able couldn't take it")]
    from handoff.waiting import unassigned_leads

    with services.sessions() as s:
        waiting, = unassigned_leads(s)
    assert waiting["lead_id"] == lead_id and "no other rep can take it now" in waiting["reason"]
    assert events(services, lead_id)[-2:] == ["rep_declined", "handoff_unassigned"]


def test_a_text_reply_of_2_passes_like_the_button(services, emulator):
    from tests.handoff.test_ladder import reply

    lead_id = make_lead(services)
    the_link(services, emulator, lead_id)
    assert reply(services, ALICE, "2") == "OK, Maria Lopez goes to Bob Baker instead."
    assert rows(services, lead_id)[0][:2] == ("Alice Able", "declined")
    assert rows(services, lead_id)[1][:2] == ("Bob Baker", "open")
    assert event(services, lead_id, "rep_declined")["via"] == "sms"


def test_a_link_stamped_with_the_handoffs_creation_is_the_same_whenever_made_and_ages_from_then():
    from datetime import UTC, datetime, timedelta

    from bot.runtime.replinks import LinkExpired

    hid = "ab" * 16
    created = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=8)
    token = make_token("s3cret", hid, created)
    assert make_token("s3cret", hid, created) == token  # the text, the email and the reminder agree
    assert read_token("s3cret", token, max_age=9 * 24 * 3600) == hid
    with pytest.raises(LinkExpired):
        read_token("s3cret", token)  # seven days from the handoff, not from when the text was made


def test_no_problem_is_not_a_pass(services, emulator):
    """'No problem, calling now' starts with 'no' but takes the lead: it used to pass it to Bob."""
    from tests.handoff.test_ladder import reply

    lead_id = make_lead(services)
    the_link(services, emulator, lead_id)
    help_text = "Reply 1 once you've called Maria Lopez +15125550100."
    assert reply(services, ALICE, "No problem, calling now") == help_text
    assert [r[:2] for r in rows(services, lead_id)] == [("Alice Able", "open")]
    assert reply(services, ALICE, "no") == "OK, Maria Lopez goes to Bob Baker instead."
