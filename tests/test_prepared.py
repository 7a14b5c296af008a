"""Prepared statements on the raw DB-API connection read and write exactly what SQLAlchemy does."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from bot.channels.conversation import OPEN_CONVERSATION, SAVE_STATE
from bot.store import database as db
from bot.store.leads import INSERT_EVENT, insert_event
from bot.store.prepared import raw_session
from bot.store.tables import Conversation, Event, Lead

NEW_YEAR = datetime(2026, 1, 1)


@pytest.fixture
def engine(db_url: str):  # noqa: ANN201
    eng = db.make_engine(db_url)
    db.init_db(eng)
    yield eng
    eng.dispose()


def seed(engine) -> str:  # noqa: ANN001
    with db.make_sessionmaker(engine)() as s:
        lead = Lead(name="Ada Lovelace", phone="+15125550100", consent=True)
        s.add(lead)
        s.flush()
        conv = Conversation(lead_id=lead.id, channel="voice", phone=lead.phone, flow_id="prequal",
                            flow_version="v1", state={"step": "need", "answers": {}})
        s.add(conv)
        s.commit()
        return conv.id


def test_select_applies_column_types_and_returns_named_rows(engine):
    conv_id = seed(engine)
    with raw_session(engine) as conn:
        row = conn.first(OPEN_CONVERSATION, {"id": conv_id})
        missing = conn.first(OPEN_CONVERSATION, {"id": "no-such-id"})
    assert row.id == conv_id and row.flow_id == "prequal"
    assert row.state == {"step": "need", "answers": {}}  # JSON decoded, not a string
    assert missing is None


def test_writes_are_read_back_by_the_orm(engine):
    conv_id = seed(engine)
    at = datetime(2026, 12, 3, 9, 30, 15, 123456)
    state = {"step": "budget", "answers": {"need": "yes"}, "nested": [1, "é", None]}
    with raw_session(engine) as conn:
        row = conn.first(OPEN_CONVERSATION, {"id": conv_id})
        conn.execute(SAVE_STATE, {"cid": conv_id, "state": state, "at": at})
        insert_event(conn, row.lead_id, "answer", at=at, step="need", value="yes")
        conn.commit()
    with db.make_sessionmaker(engine)() as s:
        conv = s.get(Conversation, conv_id)
        event = s.scalars(select(Event).where(Event.lead_id == row.lead_id, Event.type == "answer")).one()
    assert conv.state == state and conv.updated_at == at
    assert event.at == at and event.data == {"step": "need", "value": "yes"}


def test_uncommitted_work_is_rolled_back_when_the_connection_returns(engine):
    conv_id = seed(engine)
    with raw_session(engine) as conn:
        conn.execute(SAVE_STATE, {"cid": conv_id, "state": {"step": "lost"}, "at": datetime(2026, 1, 1)})
    with raw_session(engine) as conn:
        assert conn.first(OPEN_CONVERSATION, {"id": conv_id}).state["step"] == "need"


def test_first_refuses_a_statement_without_rows(engine):
    with raw_session(engine) as conn, pytest.raises(TypeError):
        conn.first(INSERT_EVENT, {"lead_id": "x", "type": "t", "at": datetime(2026, 1, 1), "data": {}})


def test_driver_errors_surface_as_sqlalchemy_exceptions(engine):
    from sqlalchemy.exc import IntegrityError

    from bot.store.leads import INSERT_LEAD

    seed(engine)
    row = {"id": "dup-id", "name": "X", "phone": "+15125550101", "channel": "call", "language": "en",
           "status": "received", "consent": True, "answers": {}, "created_at": datetime(2026, 1, 1),
           "updated_at": datetime(2026, 1, 1)}
    with raw_session(engine) as conn:
        conn.execute(INSERT_LEAD, row)
        conn.commit()
        with pytest.raises(IntegrityError):
            conn.execute(INSERT_LEAD, row)
        conn.rollback()


def test_statements_with_their_own_values_and_unsupported_ones(engine):
    from sqlalchemy import update

    from bot.store.leads import TWIN_OR_OPT_OUT

    seed(engine)
    with raw_session(engine) as conn:  # LIMIT 1 travels as a bind value of the statement itself
        found = conn.first(TWIN_OR_OPT_OUT, {"phone": "+15125550100", "since": datetime(2000, 1, 1)})
        twin, opted_out = found
        assert twin is not None and not opted_out
        expanding = update(Lead).where(Lead.status.in_(["a", "b"])).values(status="c")
        with pytest.raises(ValueError, match="expanding IN"):
            conn.execute(expanding, {})


def test_joined_statements_commit_and_roll_back_with_the_orm_session(engine):
    from bot.store.prepared import joined

    conv_id = seed(engine)
    sessions = db.make_sessionmaker(engine)
    with sessions() as s:
        joined(s.connection()).execute(SAVE_STATE, {"cid": conv_id, "state": {"step": "x"}, "at": NEW_YEAR})
        s.rollback()
    with sessions() as s:
        assert s.get(Conversation, conv_id).state["step"] == "need"
        joined(s.connection()).execute(SAVE_STATE, {"cid": conv_id, "state": {"step": "y"}, "at": NEW_YEAR})
        s.commit()
    with sessions() as s:
        assert s.get(Conversation, conv_id).state["step"] == "y"
