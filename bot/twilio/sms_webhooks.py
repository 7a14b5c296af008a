"""Inbound SMS: opt-out words first, then rep acknowledgements, then the prospect's conversation."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from bot.channels import text as texting
from bot.flows.safetext import xml_safe
from bot.twilio.signature import twilio_signed

bp = Blueprint("sms", __name__, url_prefix="/twilio")


@bp.post("/sms")
@twilio_signed
def inbound():
    """Route a text by its sender; reply with TwiML (empty when there is nothing to say)."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    # A text can hold any character; one XML forbids would break the reply, and NUL a PostgreSQL row.
    reply = texting.sms_inbound(svc, f.get("From", ""), xml_safe(f.get("Body", "")))
    resp = MessagingResponse()
    if reply:
        resp.message(xml_safe(reply))
    return Response(str(resp), mimetype="text/xml")
