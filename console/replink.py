"""The rep's lead page: a signed, expiring link with no password, showing only that handoff's lead."""

from __future__ import annotations

from flask import Blueprint, abort, make_response, redirect, render_template, url_for

from bot.runtime.replinks import LinkError, LinkExpired, read_token
from bot.store import board as board_model
from bot.store.tables import utcnow
from console.auth import svc
from handoff import acks, passing
from handoff.answer_text import readable_answers
from handoff.notify import e164, label

bp = Blueprint("replink", __name__)


def _handoff_id(token: str) -> str:
    """The handoff a link opens; else a phone-sized page saying why: expired (410) or forged (404)."""
    settings = svc().settings
    try:
        return read_token(settings.secret_key or "", token, max_age=int(settings.rep_link_hours * 3600))
    except LinkError as exc:
        status = 410 if isinstance(exc, LinkExpired) else 404
        page = render_template("console/rep_link_error.html", message=str(exc), expired=status == 410)
        abort(make_response(*_no_store(page, status)))


def _no_store(body: str, status: int = 200) -> tuple[str, int, dict[str, str]]:
    """A rep page: never cached, never sent on as a referrer, never indexed."""
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
    return body, status, headers


@bp.get("/r/<token>")
def page(token: str):
    """Phone-sized: who to call, what they want, and the two buttons."""
    hid = _handoff_id(token)
    with svc().sessions() as s:
        found = board_model.handoff_and_lead(s, hid)
        if found is None:
            abort(404, "this lead is no longer available")
        h, lead = found
        answers = {
            label(k): v for k, v in readable_answers(lead.answers, (h.details or {}).get("answers")).items()
        }
        view = {
            "name": lead.name,
            "phone": e164(lead.phone),
            "service": lead.service,
            "email": lead.email,
            "created_at": lead.created_at,
            "rep": h.rep_name,
            "status": h.status,
            "mode": h.mode,
            "due_at": h.due_at,
            "acked_at": h.acked_at,
            "reason": h.reason,
        }
    return _no_store(render_template("console/rep.html", lead=view, answers=answers, token=token))


@bp.post("/r/<token>/<action>")
def act(token: str, action: str):
    """ "I called them" acknowledges; "Can't take it" passes the lead on, as the rep's text reply would."""
    if action not in ("ack", "pass"):
        abort(404)
    hid = _handoff_id(token)
    now = utcnow()
    with svc().sessions() as s:
        found = board_model.handoff_and_lead(s, hid)
        if found is None:
            abort(404, "this lead is no longer available")
        h, _lead = found
        if action == "ack":
            done = acks.ack_handoff(svc(), s, h, h.rep_name, "link", now)
        else:
            done = passing.pass_handoff(svc(), s, h, "link", now) is not None
        s.commit()
    return redirect(url_for("console.replink.page", token=token, done=action if done else "stale"))
