"""Voice webhooks: the answered outbound call, each Gather turn, and inbound calls."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from bot.channels import amd as machine
from bot.channels import callwatch
from bot.channels import voice as voice_flow
from bot.flows.safetext import xml_safe
from bot.twilio.signature import twilio_signed

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")


def twiml(xml: str) -> Response:
    """A TwiML response; never with a character XML forbids, whatever got into the text."""
    return Response(xml_safe(xml), mimetype="text/xml")


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
    number = request.args.get("t", "")
    speech, digits = (xml_safe(f[k]) if k in f else None for k in ("SpeechResult", "Digits"))
    return twiml(voice_flow.turn(svc, conv_id, speech, digits,
                                 int(number) if number.isascii() and number.isdigit() else None))


@bp.post("")
@twilio_signed
def inbound():
    """Someone calls our number: a known lead is greeted and resumes, anyone else starts as a new lead."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    return twiml(voice_flow.inbound(svc, f.get("From", ""), f.get("CallSid", ""), f.get("CallerName", "")))


@bp.post("/status")
@twilio_signed
def inbound_status():
    """The number's call status callback (set on the Twilio number): an inbound call that ended
    mid-questions is cut off at once, and its call back planned."""
    f = request.form
    callwatch.status(current_app.extensions["leadbot"], f.get("CallSid", ""), f.get("CallStatus", ""))
    return ("", 204)


@bp.post("/amd/<attempt_id>")
@twilio_signed
def amd(attempt_id: str):
    """Twilio's asynchronous answering-machine verdict for one of our calls."""
    f = request.form
    svc = current_app.extensions["leadbot"]
    machine.amd_result(svc, attempt_id, f.get("CallSid", ""), f.get("AnsweredBy", ""))
    return ("", 204)


@bp.post("/voicemail/<attempt_id>")
@twilio_signed
def voicemail(attempt_id: str):
    """The voicemail the live call is redirected to once the machine's greeting ends."""
    return twiml(machine.voicemail(current_app.extensions["leadbot"], attempt_id))


@bp.post("/voicemail/<attempt_id>/heard")
@twilio_signed
def voicemail_heard(attempt_id: str):
    """A person spoke or pressed a key over the voicemail: the questions continue."""
    svc = current_app.extensions["leadbot"]
    return twiml(machine.heard(svc, attempt_id, request.form.get("CallSid", "")))
