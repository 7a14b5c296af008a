"""CSV backfill: good rows in, each bad row reported with its line, dials paced behind fresh leads."""

from __future__ import annotations

import io

from sqlalchemy import select

from bot.sources.backfill import backfill_queue, import_csv
from bot.store.tables import Lead
from tests.conftest import API_KEY, lead_body
from tests.sources.conftest import drain_all
from tests.sources.test_forms import SOURCES

CSV = """name,phone,email,service,consent
Ada Lovelace,+1 512 555 0161,ada@example.com,roofing,true
Bad Phone,12,bad@example.com,roofing,true
"Grace ""Amazing"" Hopper",(512) 555-0162,grace@example.com,siding,yes
,+1 512 555 0163,noname@example.com,roofing,true
No Consent,+1 512 555 0164,nc@example.com,roofing,
"""


def test_good_rows_are_imported_and_bad_rows_reported_by_line(make_app, tmp_path, emulator):
    client, services = make_app()
    path = tmp_path / "leads.csv"
    path.write_text(CSV)
    out = io.StringIO()
    report = import_csv(services, path, "expo-2026", None, dry_run=False, out=out)
    assert report.imported == 2 and len(report.errors) == 3
    text = out.getvalue()
    assert f"{path}:3: phone:" in text and f"{path}:5: name:" in text
    assert f"{path}:6: consent: no recorded consent" in text
    with services.sessions() as s:
        leads = s.scalars(select(Lead).order_by(Lead.created_at)).all()
        assert [(x.name, x.source) for x in leads] == [("Ada Lovelace", "expo-2026"),
                                                       ('Grace "Amazing" Hopper', "expo-2026")]
    # The dials wait on the backfill queue; a fresh lead posted now is called first.
    assert backfill_queue(services).count == 2 and services.queue.count == 0
    client.post("/leads", json=lead_body(phone="+1 512 555 0199", email="new@example.com"),
                headers={"Authorization": f"Bearer {API_KEY}"})
    drain_all(services)
    calls = [c["form"]["To"] for c in emulator.of("/Calls.json")]
    assert calls == ["+15125550199", "+15125550161", "+15125550162"]


def test_dry_run_saves_nothing(make_app, tmp_path):
    _, services = make_app()
    path = tmp_path / "leads.csv"
    path.write_text(CSV)
    out = io.StringIO()
    report = import_csv(services, path, "expo-2026", None, dry_run=True, out=out)
    assert report.imported == 2 and "dry run" in out.getvalue()
    with services.sessions() as s:
        assert s.scalars(select(Lead)).all() == []
    assert backfill_queue(services).count == 0


def test_import_through_a_sources_mapping_and_the_cli(make_app, tmp_path, monkeypatch, db_url, redis_url,
                                                      capsys):
    from bot.cli import main

    (tmp_path / "sources.yaml").write_text(SOURCES)
    _, services = make_app()
    path = tmp_path / "zap.csv"
    path.write_text("submission_id,first_name,last_name,phone_number,agree_to_calls\n"
                    "z1,Ada,Lovelace,+1 512 555 0171,yes\nz2,Alan,Turing,+1 512 555 0172,\n")
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "SOURCES_PATH": str(tmp_path / "sources.yaml"),
           "LEADBOT_DATA_DIR": str(tmp_path / "var")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["leads", "import", str(path), "--source", "zapier", "--mapping", "zapier"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3: consent: no recorded consent" in out and "imported 1 lead(s)" in out
    with services.sessions() as s:
        [lead] = s.scalars(select(Lead)).all()
        assert (lead.name, lead.service, lead.consent_text) == (
            "Ada Lovelace", "roofing", "I agree to be called about my quote.")
