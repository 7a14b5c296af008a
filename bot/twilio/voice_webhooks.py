"""Voice webhooks: the answered outbound call, each Gather turn, and inbound calls."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from bot.channels import voice as voice_flow
from bot.twilio.signature import twilio_signed

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")


def twiml(xml: str) -> Response:
    """A TwiML response."""
    return Response(xml, mimetype="text/xml")


@bp.post("/answer/<attempt_id>")
@twilio_signed
def answer(attempt_id: str):
    """The prospect (or their voicemail) picked up our outbound call."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    return twiml(voice_flow.answer(svc, attempt_id, f.get("CallSid", ""), f.get("AnsweredBy", "")))


@bp.post("/turn/<conv_id>")
@twilio_signed
def turn(conv_id: str):
    """One Gather result (speech or keys, or silence) goes through the flow engine."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    return twiml(voice_flow.turn(svc, conv_id, f.get("SpeechResult"), f.get("Digits")))


@bp.post("")
@twilio_signed
def inbound():
    """Someone calls our number: a returning prospect resumes, anyone else hears who we are."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    return twiml(voice_flow.inbound(svc, f.get("From", ""), f.get("CallSid", "")))
