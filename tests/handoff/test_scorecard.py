"""Scorecard figures on crafted handoffs, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.store.handoff_tables import Handoff, HandoffMode, HandoffStatus
from handoff.scorecard import median_ack_seconds, percentile, rep_scorecard
from tests.handoff.conftest import Db

T0 = datetime(2024, 6, 4, 15, 0)
NOW = T0 + timedelta(hours=1)


def handoff(lead_id: str, phone: str, name: str, *, minute: int, ack_after: int | None = None,
            status: HandoffStatus = HandoffStatus.ACKED, mode: HandoffMode = HandoffMode.SMS,
            sla: int | None = 300) -> Handoff:
    """One handoff offered at T0 + minute, acknowledged ``ack_after`` seconds later."""
    created = T0 + timedelta(minutes=minute)
    return Handoff(lead_id=lead_id, rep_name=name, rep_phone=phone, mode=mode.value, status=status.value,
                   created_at=created, due_at=created + timedelta(seconds=sla) if sla else None,
                   acked_at=created + timedelta(seconds=ack_after) if ack_after is not None else None)


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([400, 30, 120], 0.5) == 120
    assert percentile([30, 120, 400], 0.9) == 344.0
    assert percentile([10, 20], 0.5) == 15.0


def test_scorecard_figures(db: Db) -> None:
    lead = db.lead()
    a, b = f"+1777{lead.id[:7]}", f"+1778{lead.id[:7]}"
    lid = lead.id
    db.handoffs(
        handoff(lid, a, "Ann", minute=0, ack_after=30, mode=HandoffMode.WARM_TRANSFER),
        handoff(lid, a, "Ann", minute=5, ack_after=120),
        handoff(lid, a, "Ann", minute=10, ack_after=400),
        handoff(lid, a, "Ann", minute=15, status=HandoffStatus.MISSED),
        handoff(lid, a, "Ann", minute=58, status=HandoffStatus.OPEN),  # due after NOW: not yet decided
        handoff(lid, a, "Ann", minute=20, status=HandoffStatus.DECLINED, mode=HandoffMode.WARM_TRANSFER,
                sla=None),
        handoff(lid, b, "Bob", minute=1, ack_after=10),
        handoff(lid, b, "Bob", minute=-600, ack_after=9999),  # before the window
    )
    with db.factory() as session:
        cards = rep_scorecard(session, since=T0 - timedelta(hours=1), now=NOW, reps=[a, b])
        speeds = median_ack_seconds(session, since=T0 - timedelta(hours=1))
    assert cards == [
        {"rep_phone": a, "rep_name": "Ann", "handoffs": 6, "acknowledged": 3, "median_ack_seconds": 120.0,
         "p90_ack_seconds": 344.0, "within_sla": 2, "late": 1, "missed": 1, "pct_within_sla": 50.0, "open": 1,
         "transfers": 2, "transfers_accepted": 1},
        {"rep_phone": b, "rep_name": "Bob", "handoffs": 1, "acknowledged": 1, "median_ack_seconds": 10.0,
         "p90_ack_seconds": 10.0, "within_sla": 1, "late": 0, "missed": 0, "pct_within_sla": 100.0, "open": 0,
         "transfers": 0, "transfers_accepted": 0},
    ]
    assert speeds[a] == 120.0 and speeds[b] == 10.0


def test_scorecard_without_decided_handoffs(db: Db) -> None:
    lead = db.lead()
    phone = f"+1779{lead.id[:7]}"
    db.handoffs(handoff(lead.id, phone, "Cid", minute=0, status=HandoffStatus.OPEN))
    with db.factory() as session:
        [card] = rep_scorecard(session, now=T0 + timedelta(minutes=1), reps=[phone])
    assert card["pct_within_sla"] is None and card["median_ack_seconds"] is None and card["open"] == 1
