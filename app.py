"""leadbot web application factory: `gunicorn 'app:create_app()'`."""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from bot.settings import Settings

MAX_BODY_BYTES = 64 * 1024
DB_RETRY_AFTER_S = 5


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment once when not given)."""
    from bot.api import hardening
    from bot.runtime import dev_defaults
    from bot.runtime.services import build_services

    settings = settings or Settings()
    settings.check()
    settings = dev_defaults.apply(settings)
    app = Flask(__name__, template_folder="bot/templates", static_folder=None)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=MAX_BODY_BYTES)
    services = build_services(settings)
    services.flows  # noqa: B018 - load and store the flows now, outside any request's transaction
    _load_roster(services)
    app.extensions["leadbot"] = services
    _check_sources(services)
    app.session_interface = _NoSessionsForWebhooks()
    hardening.init_app(app, MAX_BODY_BYTES)
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    _register_blueprints(app, settings)
    _register_errors(app)
    return app


def _load_roster(services) -> None:  # noqa: ANN001
    """Refuse to start without a usable roster (RosterError lists every error as file:line).

    Without one, every qualified lead would find nobody to go to; a later bad edit keeps this one.
    """
    from handoff.roster import RosterError
    from handoff.roster_cache import roster_for

    try:
        roster_for(services)
    except RosterError:
        services.close()
        raise


class _NoSessionsForWebhooks(SecureCookieSessionInterface):
    """Twilio's webhook requests carry no browser session: skip the cookie work on the voice hot path."""

    def open_session(self, app: Flask, request):  # noqa: ANN001, ANN201
        if request.path.startswith("/twilio/"):
            return None  # Flask uses a null session and saves nothing
        return super().open_session(app, request)


def _register_blueprints(app: Flask, settings: Settings) -> None:
    """One blueprint per family of routes."""
    from bot.api import crm, health, intake, reports
    from bot.api import outcome as outcome_api
    from bot.sources import routes as sources
    from bot.twilio import sms_webhooks as sms
    from bot.twilio import status_webhooks as status
    from bot.twilio import transfer_webhooks as handoff_routes
    from bot.twilio import voice_webhooks as voice

    for module in (health, intake, outcome_api, voice, sms, status, handoff_routes, reports, crm, sources):
        app.register_blueprint(module.bp)
    if settings.simulated_telephony:
        from bot.twilio import simulator

        app.register_blueprint(simulator.bp)
    from console import create_blueprint

    app.register_blueprint(create_blueprint())


def _check_sources(services) -> None:  # noqa: ANN001
    """A broken SOURCES_PATH or WEBHOOKS_PATH stops the start with every problem's file:line."""
    from bot.runtime import crm
    from bot.sources.mapping import load_sources

    load_sources(services.settings.sources_path)
    crm.subscribers(services, strict=True)


def _register_errors(app: Flask) -> None:
    """API and webhook errors are JSON with a clear message, never an HTML page."""

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: Exception):
        """The database is down or unreachable: nothing was saved, so say so and ask for a retry.

        A 503 with Retry-After makes lead sources and Twilio retry (or use their fallback URL);
        a lead is only ever answered 202 once it is committed.
        """
        app.logger.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        resp = jsonify({"error": "database unavailable: nothing was saved; retry shortly"})
        resp.status_code = 503
        resp.headers["Retry-After"] = str(DB_RETRY_AFTER_S)
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path == "/" or request.path.startswith("/simulator") and exc.code == 404:
            return exc
        if request.path.startswith("/console/") and request.headers.get("X-Requested-With") != "fetch":
            return exc  # the console's pages show HTML errors; its fetches get JSON below
        messages = {413: f"body too large: the limit is {MAX_BODY_BYTES // 1024} KiB"}
        resp = jsonify({"error": messages.get(exc.code, exc.description or exc.name)})
        resp.status_code = exc.code or 500
        # Keep what the error says in headers (Allow on a 405, Location on a redirect, Retry-After...).
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                resp.headers[name] = value
        return resp
