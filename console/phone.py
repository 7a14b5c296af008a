"""Try it: start a test lead and play the prospect (and the rep) on phones driven by the built-in simulator.

The phones call the simulator's own page actions, which post to the app's signed Twilio webhooks
exactly as Twilio would; this module only starts the lead and shows the outbox.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
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
        lead_id, status, created = lead_service.create_lead(
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
