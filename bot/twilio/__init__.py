"""Twilio's side of the wire: the signature guard, the voice, SMS, status and transfer webhooks, and
the built-in simulator that plays Twilio (REST and webhooks) when no credentials are set.

A top room of Flask blueprints; the REST client itself lives in `bot.runtime.twilio_client`, since
channels and handoff place calls with it. Nothing below imports this room.
"""
