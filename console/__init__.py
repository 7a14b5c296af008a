"""The staff web console at /console/: board, lead pages, reports, flow and roster editors, phone, health.

A top room beside bot.api: one Flask blueprint (with nested ones per page family), its templates and
static files. It may import bot.channels, handoff, bot.compliance, bot.runtime, bot.store, bot.flows
and bot.settings; it reads and writes only through their functions (no SQL of its own). Nothing
imports it but app.py and bot.cli.
"""

from __future__ import annotations

from flask import Blueprint


def create_blueprint() -> Blueprint:
    """The console blueprint with every page family nested under it."""
    from console import admin, auth, board, deliveries, editor, health, phone, replink, reports, roster

    bp = Blueprint(
        "console",
        __name__,
        url_prefix="/console",
        template_folder="templates",
        static_folder="static",
        static_url_path="/static",
    )
    auth.install(bp)
    for module in (auth, board, reports, editor, phone, health, replink, admin, roster, deliveries):
        bp.register_blueprint(module.bp)
    return bp
