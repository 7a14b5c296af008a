"""Twilio webhooks of the live transfer, under /twilio/handoff; every one is signature-checked."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from bot.flows.safetext import xml_safe
from bot.twilio.signature import twilio_signed
from handoff import callbacks

bp = Blueprint("handoff", __name__, url_prefix="/twilio/handoff")


def _svc():  # noqa: ANN202
    return current_app.extensions["leadbot"]


def _twiml(xml: str) -> Response:
    """A TwiML response; never with a character XML forbids, whatever got into the text."""
    return Response(xml_safe(xml), mimetype="text/xml")


@bp.post("/hold/<transfer_id>")
@twilio_signed
def hold(transfer_id: str):
    """The conference waitUrl: hold messages and music for the waiting prospect."""
    visit = request.args.get("n", "1")
    # isascii too: "²".isdigit() is True, and int("²") a ValueError.
    number = int(visit) if visit.isascii() and visit.isdigit() else 1
    return _twiml(callbacks.hold(_svc(), transfer_id, number))


@bp.post("/whisper/<handoff_id>")
@twilio_signed
def whisper(handoff_id: str):
    """The rep's phone was answered (AnsweredBy tells a machine)."""
    f = request.form
    return _twiml(callbacks.rep_answered(_svc(), handoff_id, f.get("CallSid", ""), f.get("AnsweredBy", "")))


@bp.post("/keys/<handoff_id>")
@twilio_signed
def keys(handoff_id: str):
    """The rep's key press after the whisper (empty when they pressed nothing)."""
    return _twiml(callbacks.rep_pressed(_svc(), handoff_id, request.form.get("Digits", "")))


@bp.post("/rep-status/<handoff_id>")
@twilio_signed
def rep_status(handoff_id: str):
    """Status callbacks of the rep's leg."""
    f = request.form
    callbacks.rep_status(_svc(), handoff_id, f.get("CallStatus", ""), f.get("AnsweredBy", ""),
                         f.get("CallSid", ""))
    return ("", 204)


@bp.post("/conference/<transfer_id>")
@twilio_signed
def conference(transfer_id: str):
    """Conference status callbacks: participants joining and leaving."""
    f = request.form
    callbacks.conference_event(_svc(), transfer_id, f.get("StatusCallbackEvent", ""), f.get("CallSid", ""))
    return ("", 204)


@bp.post("/after/<transfer_id>")
@twilio_signed
def after(transfer_id: str):
    """The prospect's <Dial> action: the conference is over for them."""
    return _twiml(callbacks.prospect_dial_done(_svc(), transfer_id, request.form.get("CallStatus", "")))
