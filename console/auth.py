"""Login, logout, the session guard, CSRF on every form, roles, and lockout after repeated failures."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from bot.store import staff
from bot.store.staff_tables import Role

bp = Blueprint("auth", __name__)

# Lockout: this many failures within the window lock the account (or the address) for the window.
ACCOUNT_FAILURES = 5
IP_FAILURES = 20
LOCK_WINDOW_S = 15 * 60
SESSION_HOURS = 12
# Pages anyone may open: the login itself, static files, and the rep's signed lead page.
PUBLIC_ENDPOINTS = {"console.auth.login", "console.static", "console.replink.page", "console.replink.act"}
# Who may do what; admins may do everything.
RIGHTS = {
    "read": {Role.ADMIN, Role.EDITOR, Role.MANAGER},
    "edit_flows": {Role.ADMIN, Role.EDITOR},
    "admin": {Role.ADMIN},
}


def svc() -> Any:
    """The app's shared services."""
    return current_app.extensions["leadbot"]


def install(parent: Blueprint) -> None:
    """Guard every console request: cookie settings, the login check and CSRF."""

    @parent.record_once
    def _cookies(state: Any) -> None:
        settings = state.app.extensions["leadbot"].settings
        state.app.config.update(
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=settings.production or settings.base_url.startswith("https://"),
            PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        )

    parent.before_request(_guard)
    parent.app_context_processor(lambda: {"csrf_token": csrf_token, "can": can, "me": g.get("user")})


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def _csrf_ok() -> bool:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    return bool(session.get("csrf")) and hmac.compare_digest(sent, session["csrf"])


def _guard() -> Any:
    """Refuse a forged form; send the logged-out to the login page."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and not _csrf_ok():
        abort(400, "the form expired or was not sent by this site (CSRF check failed): reload the page")
    g.user = None
    uid = session.get("uid")
    if uid is not None:
        with svc().sessions() as s:
            user = staff.get_user(s, uid)
            if user is not None and user.active and session.get("pw") == user.password_hash[-12:]:
                g.user = {"id": user.id, "email": user.email, "role": Role(user.role)}
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.headers.get("X-Requested-With") == "fetch":
            abort(401)
        return redirect(url_for("console.auth.login", next=request.full_path.rstrip("?")))
    return None


def can(right: str) -> bool:
    """Whether the logged-in user has a right ("read", "edit_flows", "admin")."""
    user = g.get("user")
    return user is not None and user["role"] in RIGHTS[right]


def requires(right: str):  # noqa: ANN201 - decorator
    """Refuse (403) a user without the right."""

    def deco(view):  # noqa: ANN001, ANN202
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not can(right):
                return render_template("console/forbidden.html", right=right), 403
            return view(*args, **kwargs)

        return wrapper

    return deco


def audit(action: str, target: str | None = None, **details: Any) -> None:
    """Record a change made by the logged-in user, in its own transaction."""
    with svc().sessions() as s:
        staff.audit(
            s,
            g.user["email"] if g.get("user") else "anonymous",
            action,
            target,
            request.remote_addr,
            **details,
        )
        s.commit()


def _locked(email: str, ip: str) -> bool:
    r = svc().redis
    acct, addr = r.get(_key("acct", email)), r.get(_key("ip", ip))
    return int(acct or 0) >= ACCOUNT_FAILURES or int(addr or 0) >= IP_FAILURES


def _key(kind: str, value: str) -> str:
    return f"console:loginfail:{kind}:{value}"


def _failed(email: str, ip: str) -> None:
    """Count a failure against the account and the address; the window starts at the first one."""
    pipe = svc().redis.pipeline()
    for key in (_key("acct", email), _key("ip", ip)):
        pipe.incr(key)
        pipe.expire(key, LOCK_WINDOW_S, nx=True)
    pipe.execute()


def _safe_next(target: str | None) -> str:
    """Only a console path on this site (never an open redirect)."""
    if target and target.startswith("/console/") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return url_for("console.board.board")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Email and password; a locked account or address is refused even with the right password."""
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = staff.normalize_email(request.form.get("email", ""))
    ip = request.remote_addr or "?"
    if _locked(email, ip):
        with svc().sessions() as s:
            staff.audit(s, email or "?", "login_locked", email, ip)
            s.commit()
        flash(f"Too many failed logins. Try again in {LOCK_WINDOW_S // 60} minutes.", "error")
        return render_template("console/login.html", next=request.form.get("next", ""), email=email), 429
    with svc().sessions() as s:
        user = staff.verify(s, email, request.form.get("password", ""))
        staff.audit(s, email or "?", "login" if user else "login_failed", email, ip)
        if user is not None:
            staff.touch_login(user)
            uid, pw = user.id, user.password_hash[-12:]
        s.commit()
    if user is None:
        _failed(email, ip)
        flash("Wrong email or password.", "error")
        return render_template("console/login.html", next=request.form.get("next", ""), email=email), 401
    svc().redis.delete(_key("acct", email))
    session.clear()  # a fresh session (and CSRF token) on every login: no fixation
    session.permanent = True
    session.update(uid=uid, pw=pw)
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """End the session."""
    audit("logout")
    session.clear()
    return redirect(url_for("console.auth.login"))
