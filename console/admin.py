"""Admins: the staff list (add a user) and the audit log of every login and change."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from bot.store import staff
from console.auth import audit, requires, svc

bp = Blueprint("admin", __name__)


@bp.get("/users")
@requires("admin")
def users():
    """Every user, and the newest audit entries."""
    with svc().sessions() as s:
        people = staff.list_users(s)
        log = staff.audit_log(s, limit=200)
    return render_template("console/users.html", users=people, log=log)


@bp.post("/users")
@requires("admin")
def add_user():
    """Create a user with a role."""
    f = request.form
    try:
        with svc().sessions() as s:
            user = staff.add_user(s, f.get("email", ""), f.get("password", ""), f.get("role", ""))
            email, role = user.email, user.role
            s.commit()
    except staff.StaffError as exc:
        flash(str(exc), "error")
        return redirect(url_for("console.admin.users"))
    audit("user_added", email, role=role)
    flash(f"Added {email} ({role}).", "info")
    return redirect(url_for("console.admin.users"))
