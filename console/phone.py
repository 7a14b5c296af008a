"""Try it: start a test lead and play the prospect (and the rep) on phones driven by the built-in simulator.

The phones call the simulator's own page actions, which post to the app's signed Twilio webhooks
exactly as Twilio would; this module starts the lead, shows the outbox, and relays the phones'
actions to the simulator (see `relay`).
"""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError

from bot.runtime.queueing import enqueue_contact
from bot.store import board as board_model
from bot.store import leads as lead_service
from bot.store.leads import LeadIn, field_errors
from bot.store.prepared import raw_session
from console.auth import audit, requires, svc
from handoff.roster import HandoffError
from handoff.roster_cache import roster_for

bp = Blueprint("phone", __name__)
TEST_PHONE = "+15125550142"
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
CALL_ACTIONS = ("answer", "input", "hangup")


@bp.get("/try")
@requires("edit_flows")
def phone():
    """The two phones, the SMS thread and the outbox."""
    try:
        reps = [{"name": r.name, "phone": r.key} for r in roster_for(svc()).salespeople if r.active]
    except HandoffError:
        reps = []
    with svc().sessions() as s:
        outbox = board_model.mail_outbox(s)
    return render_template(
        "console/phone.html",
        simulated=svc().settings.simulated_telephony,
        reps=reps,
        outbox=outbox,
        test_phone=request.args.get("phone", TEST_PHONE),
        services=sorted({x for r in roster_for_services() for x in r}),
    )


def roster_for_services() -> list[tuple[str, ...]]:
    """Every rep's services, for the test lead's service list."""
    try:
        return [r.services for r in roster_for(svc()).salespeople]
    except HandoffError:
        return []


@bp.post("/try/lead")
@requires("edit_flows")
def start():
    """Submit a test lead through the same intake code as POST /leads; the bot calls the test phone."""
    data = {k: v for k, v in request.form.items() if k in LeadIn.model_fields}
    data.update(consent=True, source="console test", consent_text="test lead started in the console")
    try:
        lead_in = LeadIn.model_validate(data, context={"region": svc().settings.default_region})
    except ValidationError as exc:
        flash("; ".join(f"{k}: {v}" for k, v in field_errors(exc).items()), "error")
        return redirect(url_for("console.phone.phone"))
    with raw_session(svc().engine) as conn:
        lead_id, status, created, _ = lead_service.create_lead(
            conn,
            lead_in,
            {"ip": request.remote_addr, "user_agent": request.user_agent.string},
            None,
            0,
            svc().writer,
        )
    if created and status == "received":
        enqueue_contact(svc().queue, lead_id, skip_while_down=True)
    audit("test_lead", lead_id, phone=lead_in.phone, channel=lead_in.channel)
    doing = "calling" if lead_in.channel == "call" else "texting"
    flash(f"Test lead started: the bot is {doing} the test phone.", "info")
    return redirect(url_for("console.phone.phone", phone=request.form.get("phone", TEST_PHONE), lead=lead_id))


@bp.get("/try/state")
@requires("edit_flows")
def sim_state():
    """The simulator's calls and texts, for the phones to draw."""
    return relay("GET", "/simulator/state")


@bp.post("/try/calls/<sid>/<action>")
@requires("edit_flows")
def sim_call(sid: str, action: str):
    """Answer, say or key something, or hang up on one simulated call."""
    if not CALL_SID.match(sid):
        return jsonify({"error": "no such call", "fields": {"sid": "not a simulated call's id"}}), 422
    if action not in CALL_ACTIONS:
        allowed = f"one of {', '.join(CALL_ACTIONS)}"
        return jsonify({"error": "unknown action", "fields": {"action": allowed}}), 422
    return relay("POST", f"/simulator/calls/{sid}/{action}")


@bp.post("/try/sms")
@requires("edit_flows")
def sim_sms():
    """Text our number as the prospect."""
    return relay("POST", "/simulator/sms")


def relay(method: str, path: str) -> Response:
    """Pass a phone action to the built-in simulator in-process, with the simulator's token.

    The simulator answers only this machine or the token's holder, so the page could not reach it
    from a staff member's own computer. Here the session, the CSRF check and the editor role stand in
    front, and the request keeps the client's address, so the token (never sent to the browser) is
    what lets it in. The simulator still validates the body and answers 4xx naming the field.
    """
    if not svc().settings.simulated_telephony:
        abort(404)
    answer = current_app.test_client().open(
        path,
        method=method,
        data=request.get_data() if method == "POST" else None,
        content_type=request.content_type,
        headers={"X-Simulator-Token": svc().webhook_token},
        environ_base={"REMOTE_ADDR": request.remote_addr or ""},
    )
    return Response(answer.get_data(), status=answer.status_code, mimetype=answer.mimetype)
