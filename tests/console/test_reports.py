"""Reports: speed-to-lead percentiles and histograms, the funnel by source and service, CSV export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

from bot.store.tables import Lead, utcnow
from bot.store.timeline import record
from console import charts

# Seconds from the form to: first dial, first conversation, handoff, rep acknowledgement (None: never).
JOURNEYS = [
    ("google", "roofing", (2, 10, 40, 100)),
    ("google", "roofing", (4, 30, 60, 300)),
    ("facebook", "siding", (8, None, None, None)),
    ("=cmd|' /C calc'!A0", "siding", (None, None, None, None)),
]


def seed(services) -> None:  # noqa: ANN001
    start = utcnow() - timedelta(hours=2)
    with services.sessions() as s:
        for i, (source, service, marks) in enumerate(JOURNEYS):
            lead = Lead(
                name=f"Lead {i}", phone=f"+1512555010{i}", source=source, service=service, created_at=start
            )
            s.add(lead)
            s.flush()
            record(s, lead.id, "received", at=start)
            for types, seconds in zip(
                (("dialing",), ("answered",), ("qualified", "handoff_matched"), ("handoff_acked",)),
                marks,
                strict=True,
            ):
                for t in types:
                    if seconds is not None:
                        record(s, lead.id, t, at=start + timedelta(seconds=seconds))
        s.commit()


def rows(staff_client, table: str) -> list[dict[str, str]]:  # noqa: ANN001
    resp = staff_client.get(f"/console/reports/{table}.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def test_speed_to_lead_percentiles_per_milestone(staff_client, services):
    seed(services)
    speed = {r["milestone"]: r for r in rows(staff_client, "speed")}
    assert speed["first dial"] == {
        "milestone": "first dial",
        "leads": "3",
        "p50_seconds": "4.0",
        "p90_seconds": "7.2",
    }
    assert (speed["first conversation"]["leads"], speed["first conversation"]["p50_seconds"]) == ("2", "20.0")
    assert (speed["rep acknowledged"]["p50_seconds"], speed["rep acknowledged"]["p90_seconds"]) == (
        "200.0",
        "280.0",
    )


def test_funnel_by_source_and_service_and_csv_neutralizes_formulas(staff_client, services):
    seed(services)
    by_service = {r["service"]: r for r in rows(staff_client, "funnel_service")}
    assert by_service["roofing"] | {"service": ""} == {
        "service": "",
        "submitted": "2",
        "contacted": "2",
        "qualified": "2",
        "handed off": "2",
        "acknowledged": "2",
        "nurtured": "0",
        "disqualified": "0",
    }
    assert (by_service["siding"]["submitted"], by_service["siding"]["contacted"]) == ("2", "1")
    sources = [r["source"] for r in rows(staff_client, "funnel_source")]
    assert "'=cmd|' /C calc'!A0" in sources and "=cmd|' /C calc'!A0" not in sources


def chart_data(page: str) -> dict:
    """The JSON the report page embeds for its charts."""
    found = re.search(r'<script type="application/json" id="report-data" nonce="[^"]+">(.*?)</script>', page)
    return json.loads(found.group(1))


def test_report_page_embeds_chart_data_and_honours_the_range(staff_client, services):
    seed(services)
    resp = staff_client.get("/console/reports")
    page = resp.get_data(as_text=True)
    data = chart_data(page)
    dial = data["speed"][0]
    assert dial["milestone"] == "first dial" and dial["n"] == 3
    assert [n for _label, n in dial["bins"]] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # 2 s, 4 s; then 8 s
    # p50 4.0 s is 80% through the 0-5 s bucket; p90 7.2 s is 44% through 5-10 s.
    marks = [(m["name"], m["seconds"], m["at"]) for m in dial["marks"]]
    assert marks == [("p50", 4.0, 0.8), ("p90", 7.2, 1.44)]
    assert data["funnel"][:3] == [["submitted", 4], ["contacted", 3], ["qualified", 2]]
    assert data["groups"]["service"]["siding"]["submitted"] == 2
    # Every chart has a text alternative, and its script may run under the page's CSP.
    assert page.count("<canvas ") == 7
    assert len(re.findall(r'<canvas [^>]*role="img"[^>]*aria-label="[^"]+"', page)) == 7
    assert 'aria-label="Form to first dial: 3 leads; p50 4.0s, p90 7.2s"' in page
    nonce = resp.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}" src="/console/static/vendor/chart.umd.min.js"' in page
    long_ago = staff_client.get("/console/reports?from=2020-01-01&to=2020-01-31").get_data(as_text=True)
    assert chart_data(long_ago)["speed"][0]["n"] == 0 and "No leads in this range." in long_ago
    assert staff_client.get("/console/reports?from=yesterday").status_code == 400


def test_percentile_position_on_the_uneven_buckets():
    at = [charts.position(v) for v in (None, 0, 2.5, 7.5, 45, 120, 5000)]
    assert at == [None, 0, 0.5, 1.5, 4.5, 6, 10.5]
