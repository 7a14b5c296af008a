"""The HTTP API: lead intake and reads, the outcome API, reports, OpenAPI, health and the landing page.

A top room of Flask blueprints: handlers parse, call a channel, handoff or store function, and render.
Nothing below imports it.
"""
