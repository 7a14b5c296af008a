"""The roster as forms (admins): reps, managers and teams one entry at a time, the SLA, YAML in and out.

Every save is checked by the same validator as `leadbot roster check`, with each error shown beside
its field, then published like the YAML editor's: a kept version, the file replaced atomically, and
an audit entry naming who changed which fields. The form edits the file in place (comments, order
and untouched entries stay; see console/rosteryaml.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from bot.store import staff
from console import rosterform, rosteryaml
from console.auth import audit, requires, svc
from console.editor import check_roster, publish_file
from handoff.roster_cache import check_roster_text
from handoff.shifts import DAYS

bp = Blueprint("roster", __name__)
MAX_UPLOAD = 512 * 1024
SECTIONS = {"reps": ("salespeople", rosterform.REP_FIELDS),
            "managers": ("managers", rosterform.MANAGER_FIELDS), "teams": ("teams", rosterform.TEAM_FIELDS)}
VALUES = {"reps": rosterform.rep_values, "managers": rosterform.manager_values,
          "teams": rosterform.team_values}
SAVERS = {"reps": rosterform.save_rep, "managers": rosterform.save_manager, "teams": rosterform.save_team}
LABELS = {"reps": "rep", "managers": "manager", "teams": "team"}


def _live() -> tuple[Path, str]:
    path = Path(svc().settings.roster_path)
    return path, path.read_text(encoding="utf-8") if path.exists() else ""


def _doc(live: str) -> Any:
    """The editable document; 409 naming the YAML editor when the file is not one."""
    try:
        return rosteryaml.load(live)
    except rosteryaml.UnreadableRoster as exc:
        abort(409, f"The roster file cannot be edited as a form ({exc}): fix it in the YAML editor.")


def _stamp(text: str) -> str:
    """Which version of the file a form was opened on (a save over a newer one is refused)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _index_page(import_errors: list[dict[str, Any]] | None = None, status: int = 200,
                sla_errors: list[str] | None = None):
    _path, live = _live()
    try:
        doc = rosteryaml.load(live)
    except rosteryaml.UnreadableRoster:
        doc = rosteryaml.load("")
    roster, errors = check_roster_text(live, "roster.yaml", svc().settings.default_region)
    reps = [rosterform.rep_values(e) for e in rosteryaml.entries(doc, "salespeople")]
    if roster is not None:  # show phones as the bot dials them
        for view, rep in zip(reps, roster.salespeople, strict=True):
            view["phone"] = rep.phone
    managers = [rosterform.manager_values(e) for e in rosteryaml.entries(doc, "managers")]
    teams = [rosterform.team_values(e) for e in rosteryaml.entries(doc, "teams")]
    with svc().sessions() as s:
        history = staff.publications(s, "roster", "roster")
    return render_template(
        "console/roster.html", reps=reps, managers=managers, teams=teams, errors=errors, days=DAYS,
        sla=rosteryaml.shown(doc.get("sla_minutes")), history=history, import_errors=import_errors or [],
        stamp=_stamp(live), sla_errors=sla_errors or [],
    ), status


@bp.get("/roster")
@requires("admin")
def index():
    """Every rep, manager and team, with edit, add and deactivate; the SLA; YAML import and export."""
    return _index_page()


def _section(kind: str) -> tuple[str, tuple[str, ...]]:
    if kind not in SECTIONS:
        abort(404)
    return SECTIONS[kind]


def _entry_page(kind: str, index: int | None, values: dict[str, Any], stamp: str,
                field_errors: dict[str, list[str]] | None = None, general: list[str] | None = None,
                status: int = 200):
    _path, live = _live()
    doc = _doc(live)
    names = {section: [str(e.get("name")) for e in rosteryaml.entries(doc, section) if isinstance(e, dict)]
             for section in ("teams", "managers")}
    return render_template(
        "console/roster_entry.html", kind=kind, label=LABELS[kind], index=index, v=values, stamp=stamp,
        days=DAYS, teams=names["teams"], managers=names["managers"], field_errors=field_errors or {},
        general=general or [],
    ), status


@bp.get("/roster/<kind>/new")
@bp.get("/roster/<kind>/<int:index>")
@requires("admin")
def entry(kind: str, index: int | None = None):
    """The form for one rep, manager or team (a blank one to add)."""
    section, _fields = _section(kind)
    _path, live = _live()
    items = rosteryaml.entries(_doc(live), section)
    if index is not None and not 0 <= index < len(items):
        abort(404)
    values = VALUES[kind](items[index] if index is not None else None)
    return _entry_page(kind, index, values, _stamp(live))


def _form_values(kind: str) -> dict[str, Any]:
    """What was typed, to show again beside the errors."""
    f = request.form
    values: dict[str, Any] = {k: f.get(k, "") for k in SECTIONS[kind][1]}
    if kind == "teams":
        values["managers"] = f.getlist("managers")
    if kind == "reps":
        values["active"] = f.get("active") in ("1", "on", "true")
        values["has_hours"] = bool(f.get("has_hours"))
    return values


@bp.post("/roster/<kind>/new")
@bp.post("/roster/<kind>/<int:index>")
@requires("admin")
def save(kind: str, index: int | None = None):
    """Validate and publish one entry; errors come back beside their fields and nothing changes."""
    section, fields = _section(kind)
    path, live = _live()
    doc = _doc(live)
    if index is not None and not 0 <= index < len(rosteryaml.entries(doc, section)):
        abort(404)
    if request.form.get("stamp") != _stamp(live):
        return _entry_page(kind, index, _form_values(kind), request.form.get("stamp", ""), general=[
            "Someone changed the roster after you opened this form. Reload it, then make your change again."
        ], status=409)
    form: dict[str, Any] = request.form.to_dict()
    form["managers"] = request.form.getlist("managers")  # a team's, one checkbox each
    at, changes = SAVERS[kind](doc, index, form)
    draft = rosteryaml.dump(doc)
    errors = check_roster(draft)
    if errors:
        by_field, general = rosterform.field_errors(errors, section, at, fields)
        return _entry_page(kind, index, _form_values(kind), request.form["stamp"], by_field, general, 422)
    who = rosteryaml.entries(doc, section)[at].get("name")
    if not changes:
        flash(f"No changes to {who}.", "info")
        return redirect(url_for("console.roster.index"))
    verb, label = "added" if index is None else "edited", LABELS[kind]
    note = f"form: {verb} {label} {who} ({', '.join(changes)})"
    pub_id = publish_file("roster", "roster", path, draft, note)
    audit(f"roster_{label}_{'added' if index is None else 'saved'}", who, version=pub_id, changed=changes)
    flash(f"Saved {who} (roster version {pub_id}).", "info")
    return redirect(url_for("console.roster.index"))


@bp.post("/roster/<kind>/<int:index>/remove")
@requires("admin")
def remove(kind: str, index: int):
    """Take a rep, manager or team out of the roster (a rep can also just be deactivated)."""
    section, _fields = _section(kind)
    path, live = _live()
    doc = _doc(live)
    items = rosteryaml.entries(doc, section)
    if not 0 <= index < len(items):
        abort(404)
    values = VALUES[kind](items[index])
    if request.form.get("stamp") != _stamp(live):
        return _entry_page(kind, index, values, _stamp(live), general=[
            "Someone changed the roster after you opened this form: check it again, then remove."],
            status=409)
    who = values["name"]
    del doc[section][index]
    draft = rosteryaml.dump(doc)
    errors = check_roster(draft)
    if errors:  # e.g. the last manager, or a team that reps still name
        return _entry_page(kind, index, values, _stamp(live), general=[
            f"{who} cannot be removed: {e['where']}: {e['message']}" for e in errors], status=422)
    label = LABELS[kind]
    pub_id = publish_file("roster", "roster", path, draft, f"form: removed {label} {who}")
    audit(f"roster_{label}_removed", who, version=pub_id, was=values)
    flash(f"Removed {who} (roster version {pub_id}).", "info")
    return redirect(url_for("console.roster.index"))


@bp.post("/roster/reps/<int:index>/active")
@requires("admin")
def set_active(index: int):
    """Deactivate a rep (out of rotation, kept in the roster) or put them back."""
    path, live = _live()
    doc = _doc(live)
    reps = rosteryaml.entries(doc, "salespeople")
    if not 0 <= index < len(reps):
        abort(404)
    if request.form.get("stamp") != _stamp(live):
        flash("Someone changed the roster meanwhile: nothing was changed, look again.", "error")
        return redirect(url_for("console.roster.index"))
    active = request.form.get("active") == "1"
    rosterform.set_active(doc, index, active)
    who, word = reps[index].get("name"), "activated" if active else "deactivated"
    draft = rosteryaml.dump(doc)
    errors = check_roster(draft)
    if errors:
        flash(f"Not changed: {errors[0]['where']}: {errors[0]['message']}", "error")
    else:
        pub_id = publish_file("roster", "roster", path, draft, f"form: {word} rep {who}")
        audit(f"roster_rep_{word}", who, version=pub_id)
        flash(f"{who} is {'back in' if active else 'out of'} rotation (roster version {pub_id}).", "info")
    return redirect(url_for("console.roster.index"))


@bp.post("/roster/sla")
@requires("admin")
def set_sla():
    """The minutes a rep has to acknowledge a handoff, for reps whose team sets none."""
    path, live = _live()
    doc = _doc(live)
    if request.form.get("stamp") != _stamp(live):
        return _index_page(status=409, sla_errors=["Someone changed the roster meanwhile: look again."])
    before, after = rosterform.set_sla(doc, request.form.get("sla_minutes", ""))
    draft = rosteryaml.dump(doc)
    errors = [e["message"] for e in check_roster(draft)]
    if errors:
        return _index_page(status=422, sla_errors=errors)
    if before != after:
        pub_id = publish_file("roster", "roster", path, draft, f"form: SLA {before or 'default'} -> "
                              f"{after or 'default'} minutes")
        audit("roster_sla_saved", "sla_minutes", version=pub_id, changed=[before, after])
        flash(f"The SLA is {after or 'the default'} minutes (roster version {pub_id}).", "info")
    return redirect(url_for("console.roster.index"))


@bp.post("/roster/import")
@requires("admin")
def import_yaml():
    """Replace the roster with an uploaded YAML file, once it validates."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash("Choose a YAML file to import.", "error")
        return redirect(url_for("console.roster.index"))
    raw = upload.stream.read(MAX_UPLOAD + 1)
    if len(raw) > MAX_UPLOAD:
        return _index_page([{"line": None, "where": "", "message": "the file is over 512 KB"}], 413)
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return _index_page([{"line": None, "where": "", "message": "not UTF-8 text"}], 422)
    errors = check_roster(text)
    if errors:
        return _index_page(errors, 422)
    path, _live_text = _live()
    name = Path(upload.filename).name[:80]
    pub_id = publish_file("roster", "roster", path, text, f"imported {name}")
    audit("roster_imported", "roster", version=pub_id, file=name)
    flash(f"Imported {name} (roster version {pub_id}).", "info")
    return redirect(url_for("console.roster.index"))
