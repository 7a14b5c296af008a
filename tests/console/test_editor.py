"""The flow and roster editors: errors by line as you type, diff, publish, versions and rollback."""

from __future__ import annotations

from pathlib import Path

from bot.store import staff

BROKEN_TARGET = ("      no: owner\n", "      no: ownr\n")


def source(services, name: str = "roofing") -> str:  # noqa: ANN001
    return (Path(services.settings.flows_dir) / f"{name}.yaml").read_text()


def test_check_reports_errors_by_line_and_the_diff(staff_client, services):
    live = source(services)
    draft = live.replace(*BROKEN_TARGET)
    line = live[: live.index(BROKEN_TARGET[0])].count("\n") + 1
    resp = staff_client.post(
        "/console/flows/roofing/check", json={"source": draft}, headers={"X-CSRF-Token": staff_client.csrf}
    )
    body = resp.get_json()
    assert resp.status_code == 200
    assert [(e["line"], e["where"]) for e in body["errors"]] == [(line, "steps.leak.on.no")]
    assert "ownr" in body["errors"][0]["message"]
    assert "-      no: owner\n+      no: ownr\n" in body["diff"]
    ok = staff_client.post(
        "/console/flows/roofing/check", json={"source": live}, headers={"X-CSRF-Token": staff_client.csrf}
    ).get_json()
    assert ok == {"errors": [], "diff": ""}


def test_check_needs_the_csrf_header(staff_client):
    assert staff_client.post("/console/flows/roofing/check", json={"source": ""}).status_code == 400


def test_broken_flow_is_never_published(staff_client, services):
    live = source(services)
    resp = staff_client.post(
        "/console/flows/roofing/publish",
        data={"source": live.replace(*BROKEN_TARGET), "csrf_token": staff_client.csrf},
    )
    assert resp.status_code == 422 and b"ownr" in resp.data
    assert source(services) == live
    with services.sessions() as s:
        assert staff.publications(s, "flow", "roofing") == []


def test_publish_then_roll_back_keeps_every_version_with_who_and_when(staff_client, services, admin):
    original = source(services)
    edited = original.replace("Do you own the home?", "Are you the homeowner?")
    resp = staff_client.post(
        "/console/flows/roofing/publish",
        data={"source": edited, "note": "friendlier", "csrf_token": staff_client.csrf},
    )
    assert resp.status_code == 302
    assert source(services) == edited
    services.flows.refresh(force=True)
    assert "Are you the homeowner?" in services.flows.current("roofing").source
    with services.sessions() as s:
        versions = [
            (p.published_by, p.note, p.source == edited) for p in staff.publications(s, "flow", "roofing")
        ]
        first = staff.publications(s, "flow", "roofing")[-1].id
    assert versions == [(admin, "friendlier", True), ("file", "as found on disk", False)]
    page = staff_client.get("/console/flows/roofing").get_data(as_text=True)
    assert "friendlier" in page and "Roll back" in page
    staff_client.post(f"/console/flows/roofing/rollback/{first}", data={"csrf_token": staff_client.csrf})
    assert source(services) == original
    with services.sessions() as s:
        assert len(staff.publications(s, "flow", "roofing")) == 3
        actions = [(a.action, a.target) for a in staff.audit_log(s)][:2]
    assert actions == [("flow_rolled_back", "roofing"), ("flow_published", "roofing")]


def test_only_flow_files_can_be_edited(staff_client):
    assert staff_client.get("/console/flows/routing").status_code == 404
    assert staff_client.get("/console/flows/..%2Fpyproject").status_code == 404
    assert staff_client.get("/console/flows/nope").status_code == 404


def test_roster_editor_validates_publishes_and_exports(staff_client, services):
    path = Path(services.settings.roster_path)
    live = path.read_text()
    bad = live.replace("+1", "+0", 1)
    errors = staff_client.post(
        "/console/roster/check", json={"source": bad}, headers={"X-CSRF-Token": staff_client.csrf}
    ).get_json()["errors"]
    assert errors and errors[0]["line"] and "phone" in errors[0]["where"]
    assert (
        staff_client.post(
            "/console/roster/publish", data={"source": bad, "csrf_token": staff_client.csrf}
        ).status_code
        == 422
    )
    assert path.read_text() == live
    edited = live + "\n# reviewed\n"
    assert (
        staff_client.post(
            "/console/roster/publish", data={"source": edited, "csrf_token": staff_client.csrf}
        ).status_code
        == 302
    )
    assert path.read_text() == edited
    assert staff_client.get("/console/roster.yaml").get_data(as_text=True) == edited


def test_nurture_sequences_and_calling_rules_are_edited_with_their_own_validators(staff_client, services):
    folder = Path(services.settings.flows_dir)
    listing = staff_client.get("/console/flows").get_data(as_text=True)
    assert "nurture/not_ready.yaml" in listing and "calling_rules.yaml" in listing
    seq = (folder / "nurture" / "not_ready.yaml").read_text()
    bad = seq.replace("after: 14d", "after: soon")
    line = seq[: seq.index("after: 14d")].count("\n") + 1
    errors = staff_client.post("/console/flows/nurture/not_ready/check", json={"source": bad},
                               headers={"X-CSRF-Token": staff_client.csrf}).get_json()["errors"]
    assert [e["line"] for e in errors] == [line] and "soon" in errors[0]["message"]
    edited = seq.replace("just checking in", "checking in")
    assert staff_client.post("/console/flows/nurture/not_ready/publish",
                             data={"source": edited, "csrf_token": staff_client.csrf}).status_code == 302
    assert (folder / "nurture" / "not_ready.yaml").read_text() == edited
    rules = (folder / "calling_rules.yaml").read_text()
    broken = rules.replace('window: "08:00-21:00"', 'window: "8am-9pm"', 1)
    errors = staff_client.post("/console/flows/calling_rules/check", json={"source": broken},
                               headers={"X-CSRF-Token": staff_client.csrf}).get_json()["errors"]
    assert errors and errors[0]["line"] == rules[: rules.index('window: "08:00-21:00"')].count("\n") + 1
    assert staff_client.get("/console/flows/nurture/../routing").status_code == 404
