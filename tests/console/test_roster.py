"""The roster form: per-field errors from the roster validator, versions, audit, import/export, roles."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.store import staff
from handoff.roster import load_roster
from tests.console.conftest import csrf_of, login, make_user


def form_of(client, url: str) -> dict[str, str]:  # noqa: ANN001
    """The form's current values, as a browser would submit them."""
    html = client.get(url).get_data(as_text=True)
    values = {}
    for tag in re.findall(r"<input [^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        typ = re.search(r'type="([^"]+)"', tag)
        if typ and typ.group(1) == "checkbox" and " checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        values[name.group(1)] = value.group(1).replace("&#39;", "'").replace("&#34;", '"') if value else ""
    team = re.search(r'<select id="f-team".*?</select>', html, re.S)
    if team:
        chosen = re.search(r"<option selected>([^<]*)</option>", team.group(0))
        values["team"] = chosen.group(1) if chosen else ""
    return values


def roster(services):  # noqa: ANN001, ANN201
    return load_roster(services.settings.roster_path, "US")


def test_index_lists_reps_and_managers(staff_client, services):
    page = staff_client.get("/console/roster").get_data(as_text=True)
    assert "Dana Reyes" in page and "+15125550142" in page and "Priya Natarajan" in page
    assert 'href="/console/roster/reps/0"' in page and "Deactivate" in page


def test_a_bad_field_comes_back_beside_it_and_nothing_is_written(staff_client, services):
    path = Path(services.settings.roster_path)
    live = path.read_text()
    values = form_of(staff_client, "/console/roster/reps/1")
    assert values["name"] == "Marcus Hill" and values["mon"] == "07:30-16:30" and values["team"] == "Central"
    values.update(phone="555", weight="lots", tue="9am-5pm", services="")
    resp = staff_client.post("/console/roster/reps/1", data=values)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    errors = dict(re.findall(r'<span class="field-error" id="f-([a-z_]+)-error">([^<]+)</span>', html))
    assert set(errors) == {"phone", "weight", "tue", "services"}
    assert "not a valid phone number &#39;555&#39;" in errors["phone"]
    assert "whole number" in errors["weight"] and "9am-5pm" in errors["tue"]
    assert 'id="f-phone" name="phone" type="tel" value="555"' in html  # what was typed stays
    assert 'aria-invalid="true" aria-describedby="f-phone-hint f-phone-error"' in html
    assert path.read_text() == live
    with services.sessions() as s:
        assert staff.publications(s, "roster", "roster") == []


def test_a_missing_required_field_is_named_at_the_field(staff_client):
    resp = staff_client.post("/console/roster/reps/new", data={
        "csrf_token": staff_client.csrf, "stamp": form_of(staff_client, "/console/roster/reps/new")["stamp"],
        "name": "Nia New", "phone": "+1 512 555 0111", "services": "roofing", "active": "1"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert re.search(r'id="f-email-error">required key &#39;email&#39; not provided', html)


def test_saving_a_rep_keeps_comments_and_other_entries_and_audits_the_change(staff_client, services, admin):
    path = Path(services.settings.roster_path)
    live = path.read_text()
    values = form_of(staff_client, "/console/roster/reps/0")
    values.update(weight="3", sat="", sun="10:00-14:00", territories="TX, 512")
    resp = staff_client.post("/console/roster/reps/0", data=values)
    assert resp.status_code == 302
    text = path.read_text()
    assert text.startswith(live[: live.index("sla_minutes:")])  # the header comment
    assert text[text.index("  - name: Marcus Hill"):] == live[live.index("  - name: Marcus Hill"):]
    dana = roster(services).rep("Dana Reyes")
    assert dana.weight == 3 and dana.territories == ("TX", "512") and dana.capacity == 3
    assert dana.hours.to_dict() == {"timezone": "America/Chicago", "mon-fri": "08:00-18:00",
                                    "sun": "10:00-14:00"}
    assert "    capacity: 3\n" in text and "\n\n  - name: Marcus Hill" in text  # the blank line stays between
    with services.sessions() as s:
        (pub, first) = staff.publications(s, "roster", "roster")
        entry = staff.audit_log(s)[0]
    assert pub.published_by == admin and pub.source == text and first.source == live
    assert "edited rep Dana Reyes" in pub.note and "weight" in pub.note
    assert (entry.action, entry.target) == ("roster_rep_saved", "Dana Reyes")
    assert entry.details["version"] == pub.id
    assert entry.details["changed"]["weight"] == ["", "3"] and "sat" in entry.details["changed"]
    staff_client.post(f"/console/roster/rollback/{first.id}", data={"csrf_token": staff_client.csrf})
    assert path.read_text() == live


def test_add_deactivate_and_reactivate_a_rep(staff_client, services):
    values = form_of(staff_client, "/console/roster/reps/new")
    values.update(name="Nia New", phone="+1 512 555 0111", email="nia@example.com", services="roofing, solar",
                  languages="en, no", has_hours="1", timezone="America/Chicago", mon="08:00-12:00",
                  tue="08:00-12:00", capacity="2")
    assert staff_client.post("/console/roster/reps/new", data=values).status_code == 302
    nia = roster(services).rep("Nia New")
    assert nia.phone == "+15125550111" and nia.languages == ("en", "no") and nia.capacity == 2
    assert nia.hours.to_dict() == {"timezone": "America/Chicago", "mon-tue": "08:00-12:00"}
    index = [r.name for r in roster(services).salespeople].index("Nia New")
    page = staff_client.get("/console/roster").get_data(as_text=True)
    stamp = re.search(r'name="stamp" value="([^"]+)"', page).group(1)
    staff_client.post(f"/console/roster/reps/{index}/active",
                      data={"csrf_token": staff_client.csrf, "stamp": stamp, "active": "0"})
    assert roster(services).rep("Nia New").active is False
    assert "active: false" in Path(services.settings.roster_path).read_text()
    page = staff_client.get("/console/roster").get_data(as_text=True)
    stamp = re.search(r'name="stamp" value="([^"]+)"', page).group(1)
    staff_client.post(f"/console/roster/reps/{index}/active",
                      data={"csrf_token": staff_client.csrf, "stamp": stamp, "active": "1"})
    assert roster(services).rep("Nia New").active is True
    with services.sessions() as s:
        actions = [a.action for a in staff.audit_log(s)][:3]
    assert actions == ["roster_rep_activated", "roster_rep_deactivated", "roster_rep_added"]


def test_a_duplicate_phone_is_shown_on_the_rep_being_edited(staff_client, services):
    values = form_of(staff_client, "/console/roster/reps/0")
    values["phone"] = "+1 214-555-0187"  # Marcus Hill's
    html = staff_client.post("/console/roster/reps/0", data=values).get_data(as_text=True)
    assert re.search(r'id="f-phone-error">duplicate phone &#39;\+12145550187&#39;', html)


def test_edit_a_manager(staff_client, services):
    values = form_of(staff_client, "/console/roster/managers/1")
    assert values["name"] == "Tom Becker"
    values["phone"] = "not a phone"
    resp = staff_client.post("/console/roster/managers/1", data=values)
    assert resp.status_code == 422 and "not a valid phone number" in resp.get_data(as_text=True)
    values["phone"] = "+1 602 555 0100"
    assert staff_client.post("/console/roster/managers/1", data=values).status_code == 302
    assert roster(services).managers[1].phone == "+16025550100"


def test_a_stale_form_is_refused(staff_client, services):
    values = form_of(staff_client, "/console/roster/reps/0")
    path = Path(services.settings.roster_path)
    path.write_text(path.read_text() + "\n# edited meanwhile\n")
    values["weight"] = "2"
    resp = staff_client.post("/console/roster/reps/0", data=values)
    assert resp.status_code == 409 and "Someone changed the roster" in resp.get_data(as_text=True)
    assert roster(services).rep("Dana Reyes").weight == 1


def test_yaml_import_is_validated_and_export_downloads_the_file(staff_client, services):
    path = Path(services.settings.roster_path)
    live = path.read_text()
    export = staff_client.get("/console/roster.yaml")
    assert export.get_data(as_text=True) == live and "attachment" in export.headers["Content-Disposition"]
    import io

    bad = live.replace("services: [roofing, gutters]", "services: []")
    resp = staff_client.post("/console/roster/import", data={
        "csrf_token": staff_client.csrf, "file": (io.BytesIO(bad.encode()), "new.yaml")},
        content_type="multipart/form-data")
    assert resp.status_code == 422 and "salespeople[0].services" in resp.get_data(as_text=True)
    assert path.read_text() == live
    good = yaml.safe_dump({"managers": [{"name": "M", "email": "m@example.com"}],
                           "salespeople": [{"name": "R", "phone": "+15125550177", "email": "r@example.com",
                                            "services": ["roofing"]}]})
    resp = staff_client.post("/console/roster/import", data={
        "csrf_token": staff_client.csrf, "file": (io.BytesIO(good.encode()), "new.yaml")},
        content_type="multipart/form-data")
    assert resp.status_code == 302 and path.read_text() == good
    with services.sessions() as s:
        assert staff.audit_log(s)[0].action == "roster_imported"


def test_forms_need_csrf_and_the_admin_role(app, services, staff_client):
    values = form_of(staff_client, "/console/roster/reps/0")
    values.pop("csrf_token")
    assert staff_client.post("/console/roster/reps/0", data=values).status_code == 400
    assert staff_client.post("/console/roster/import", data={}).status_code == 400
    make_user(services, "ed@example.com", "editor")
    editor = app.test_client()
    login(editor, "ed@example.com")
    token = csrf_of(editor.get("/console/").get_data(as_text=True))
    assert editor.get("/console/roster").status_code == 403
    assert editor.get("/console/roster/reps/0").status_code == 403
    assert editor.post("/console/roster/reps/0", data={**values, "csrf_token": token}).status_code == 403
    assert roster(services).rep("Dana Reyes").weight == 1


def test_names_are_escaped(staff_client, services):
    values = form_of(staff_client, "/console/roster/reps/0")
    values["name"] = "<script>x()</script> {{7*7}}"
    assert staff_client.post("/console/roster/reps/0", data=values).status_code == 302
    page = staff_client.get("/console/roster").get_data(as_text=True)
    assert "&lt;script&gt;x()&lt;/script&gt; {{7*7}}" in page and "<script>x()" not in page


def stamp_of(client) -> str:  # noqa: ANN001
    page = client.get("/console/roster").get_data(as_text=True)
    return re.search(r'name="stamp" value="([^"]+)"', page).group(1)


def test_a_team_renamed_follows_to_its_reps_and_its_managers_are_ticked(staff_client, services):
    html = staff_client.get("/console/roster/teams/1").get_data(as_text=True)
    assert re.search(r'value="Tom Becker" checked>', html) and re.search(r'value="Priya Natarajan">', html)
    data = {"csrf_token": staff_client.csrf, "stamp": stamp_of(staff_client), "name": "Pacific",
            "managers": ["Tom Becker", "Priya Natarajan"], "sla_minutes": "3.5"}
    assert staff_client.post("/console/roster/teams/1", data=data).status_code == 302
    r = roster(services)
    assert r.team("Pacific").managers == ("Tom Becker", "Priya Natarajan")
    assert r.team("Pacific").sla_minutes == 3.5
    assert r.rep("Ana Souza").team == "Pacific" and r.rep("Kevin O'Brien").team == "Pacific"
    with services.sessions() as s:
        entry = staff.audit_log(s)[0]
    assert (entry.action, entry.target) == ("roster_team_saved", "Pacific")
    assert entry.details["changed"]["renamed for reps"] == ["Ana Souza", "Kevin O'Brien"]


def test_a_team_error_is_shown_at_its_field(staff_client, services):
    data = {"csrf_token": staff_client.csrf, "stamp": stamp_of(staff_client), "name": "East",
            "managers": ["Priya Natarajan"], "sla_minutes": "soon"}
    html = staff_client.post("/console/roster/teams/new", data=data).get_data(as_text=True)
    assert re.search(r'id="f-sla_minutes-error">expected a number above 0, got &#39;soon&#39;',
                     html)
    assert roster(services).team("East") is None


def test_a_manager_renamed_follows_to_the_teams(staff_client, services):
    values = form_of(staff_client, "/console/roster/managers/0")
    values["name"] = "Priya N. Natarajan"
    assert staff_client.post("/console/roster/managers/0", data=values).status_code == 302
    assert roster(services).team("Central").managers == ("Priya N. Natarajan",)


def test_the_sla_is_set_in_place_and_checked(staff_client, services):
    path = Path(services.settings.roster_path)
    form = {"csrf_token": staff_client.csrf, "stamp": stamp_of(staff_client), "sla_minutes": "0"}
    bad = staff_client.post("/console/roster/sla", data=form)
    assert bad.status_code == 422 and "expected a number above 0, got 0" in bad.get_data(as_text=True)
    live = path.read_text()
    staff_client.post("/console/roster/sla", data={"csrf_token": staff_client.csrf,
                                                    "stamp": stamp_of(staff_client), "sla_minutes": "7"})
    assert roster(services).sla_minutes == 7
    assert path.read_text() == live.replace("\nsla_minutes: 5\n", "\nsla_minutes: 7\n")
    with services.sessions() as s:
        entry = staff.audit_log(s)[0]
    assert (entry.action, entry.details["changed"]) == ("roster_sla_saved", ["5", "7"])


def test_remove_checks_like_a_save(staff_client, services):
    form = {"csrf_token": staff_client.csrf, "stamp": stamp_of(staff_client)}
    resp = staff_client.post("/console/roster/teams/0/remove", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Central cannot be removed: salespeople[0].team: unknown team" in html
    assert roster(services).team("Central") is not None
    resp = staff_client.post("/console/roster/reps/4/remove", data=form)
    assert resp.status_code == 302
    assert [r.name for r in roster(services).salespeople] == [
        "Dana Reyes", "Marcus Hill", "Ana Souza", "Kevin O'Brien"]
    with services.sessions() as s:
        entry = staff.audit_log(s)[0]
    assert (entry.action, entry.target, entry.details["was"]["phone"]) == (
        "roster_rep_removed", "Lena Fischer", "+1 312-555-0178")
