"""The flow and roster editors: validate as you type (the same validators as `flows check` and the
roster loader), diff against the live file, publish, and roll back to any published version."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, url_for

from bot.store import staff
from console import validators
from console.auth import audit, requires, svc

bp = Blueprint("editor", __name__)


def _flow_path(name: str) -> Path:
    """An editable file of FLOWS_DIR (a flow, calling_rules, cadence, nurture/<x>); 404 otherwise."""
    path = validators.editable_path(Path(svc().settings.flows_dir), name)
    if path is None:
        abort(404)
    return path


def check_flow(name: str, text: str) -> list[dict[str, Any]]:
    """Every error in a draft, by the validator `leadbot flows check` uses for that file."""
    return validators.check_text(name, text)


def check_roster(text: str) -> list[dict[str, Any]]:
    """Every error in roster text, as {line, where, message}."""
    return validators.check_roster(text, svc().settings.default_region)


def diff(live: str, draft: str, name: str) -> str:
    """A unified diff of the live text against the draft."""
    return "".join(
        difflib.unified_diff(
            live.splitlines(keepends=True),
            draft.splitlines(keepends=True),
            f"{name} (live)",
            f"{name} (draft)",
            n=2,
        )
    )


def _write(path: Path, text: str) -> None:
    """Replace a file atomically, so a process reloading it never reads half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_file(kind: str, name: str, path: Path, text: str, note: str | None) -> int:
    """Keep the live text as the first version (once), record the new one, then write the file."""
    with svc().sessions() as s:
        if not staff.publications(s, kind, name) and path.exists():
            staff.publish(s, kind, name, path.read_text(encoding="utf-8"), "file", "as found on disk")
        row = staff.publish(s, kind, name, text, g.user["email"], note)
        pub_id = row.id
        s.commit()
    _write(path, text)
    return pub_id


@bp.get("/flows")
@requires("edit_flows")
def flows():
    """Every flow file, with its problems."""
    folder = Path(svc().settings.flows_dir)
    errors = svc().flows.errors
    items = [{**f, "errors": len(errors.get(str(folder / f"{f['name']}.yaml"), []))}
             for f in validators.listing(folder)]
    return render_template("console/flows.html", flows=items, ids=svc().flows.ids())


def _editor_page(
    kind: str, name: str, live: str, draft: str, errors: list[dict[str, Any]], status: int = 200
):
    with svc().sessions() as s:
        history = staff.publications(s, kind, name)
    return render_template(
        "console/edit.html",
        kind=kind,
        name=name,
        live=live,
        draft=draft,
        errors=errors,
        diff=diff(live, draft, name),
        history=history,
    ), status


@bp.get("/flows/<path:name>")
@requires("edit_flows")
def flow(name: str):
    """Edit one flow."""
    live = _flow_path(name).read_text(encoding="utf-8")
    return _editor_page("flow", name, live, live, [])


@bp.post("/flows/<path:name>/check")
@requires("edit_flows")
def check(name: str):
    """Validate a draft as the editor types: errors by line and the diff against the live file."""
    live = _flow_path(name).read_text(encoding="utf-8")
    draft = (request.get_json(silent=True) or {}).get("source", "")
    return jsonify({"errors": check_flow(name, draft), "diff": diff(live, draft, name)})


@bp.post("/flows/<path:name>/publish")
@requires("edit_flows")
def publish(name: str):
    """Publish a valid draft; a broken one comes back with its errors and nothing changes."""
    path = _flow_path(name)
    draft = request.form.get("source", "").replace("\r\n", "\n")
    errors = check_flow(name, draft)
    if errors:
        return _editor_page("flow", name, path.read_text(encoding="utf-8"), draft, errors, 422)
    pub_id = publish_file("flow", name, path, draft, request.form.get("note") or None)
    audit("flow_published", name, version=pub_id)
    flash(f"Published {name} (version {pub_id}). New calls use it; calls in progress keep theirs.", "info")
    return redirect(url_for("console.editor.flow", name=name))


@bp.post("/flows/<path:name>/rollback/<int:pub_id>")
@requires("edit_flows")
def rollback(name: str, pub_id: int):
    """Publish an earlier version again."""
    return _rollback("flow", name, _flow_path(name), pub_id, check_flow)


def _rollback(kind: str, name: str, path: Path, pub_id: int, checker: Any) -> Any:
    with svc().sessions() as s:
        row = staff.publication(s, pub_id)
        source = row.source if row is not None and row.kind == kind and row.name == name else None
    if source is None:
        abort(404)
    errors = checker(name, source) if kind == "flow" else checker(source)
    if errors:  # e.g. a rule that changed since: never publish what does not load
        flash(f"Version {pub_id} no longer validates: {errors[0]['message']}", "error")
    else:
        new_id = publish_file(kind, name, path, source, f"rollback to version {pub_id}")
        audit(f"{kind}_rolled_back", name, to_version=pub_id, version=new_id)
        flash(f"Rolled back to version {pub_id} (now version {new_id}).", "info")
    return redirect(
        url_for("console.roster.index") if kind == "roster" else url_for("console.editor.flow", name=name)
    )


def _roster_path() -> Path:
    return Path(svc().settings.roster_path)


@bp.get("/roster/yaml")
@requires("admin")
def roster():
    """Edit the roster as YAML (the form at /roster edits one rep or manager at a time)."""
    path = _roster_path()
    live = path.read_text(encoding="utf-8") if path.exists() else ""
    return _editor_page("roster", "roster", live, live, [])


@bp.post("/roster/check")
@requires("admin")
def roster_check():
    """Validate a roster draft."""
    path = _roster_path()
    live = path.read_text(encoding="utf-8") if path.exists() else ""
    draft = (request.get_json(silent=True) or {}).get("source", "")
    return jsonify({"errors": check_roster(draft), "diff": diff(live, draft, "roster")})


@bp.post("/roster/publish")
@requires("admin")
def roster_publish():
    """Publish a valid roster (also the YAML import: the upload fills the editor first)."""
    path = _roster_path()
    draft = request.form.get("source", "").replace("\r\n", "\n")
    errors = check_roster(draft)
    if errors:
        live = path.read_text(encoding="utf-8") if path.exists() else ""
        return _editor_page("roster", "roster", live, draft, errors, 422)
    pub_id = publish_file("roster", "roster", path, draft, request.form.get("note") or None)
    audit("roster_published", "roster", version=pub_id)
    flash(f"Published the roster (version {pub_id}).", "info")
    return redirect(url_for("console.editor.roster"))


@bp.post("/roster/rollback/<int:pub_id>")
@requires("admin")
def roster_rollback(pub_id: int):
    """Publish an earlier roster again."""
    return _rollback("roster", "roster", _roster_path(), pub_id, check_roster)


@bp.get("/roster.yaml")
@requires("admin")
def roster_export():
    """The live roster as a YAML download."""
    path = _roster_path()
    return Response(
        path.read_text(encoding="utf-8") if path.exists() else "",
        mimetype="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="roster.yaml"'},
    )
