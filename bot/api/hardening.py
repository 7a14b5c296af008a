"""Request and response guards for every route: hostile bodies, paths and queries, and security headers."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Response, abort, g, jsonify, request
from flask.json.provider import DefaultJSONProvider

from bot.flows.safetext import bad_character
from bot.runtime.dev_defaults import local_client

# Only HTML pages get a Content-Security-Policy; the nonce lets each page's own <script> run.
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested too deeply is malformed (a 400), not a RecursionError (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def is_loopback_client() -> bool:
    """True for a request from this machine that no proxy forwarded."""
    return local_client(request.remote_addr, request.headers)


def csp_nonce() -> str:
    """This response's script nonce (templates put it on their <script> tags)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _error(status: int, error: str, fields: dict[str, str]) -> Response:
    resp = jsonify({"error": error, "fields": fields})
    resp.status_code = status
    return resp


def init_app(app: Flask, max_body: int) -> None:
    """Install the guards on the app."""
    app.json = SafeJSONProvider(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.before_request
    def reject_hostile_requests() -> Response | None:
        """No route wants control characters in its path or query; chunked bodies keep the size limit."""
        if bad_character(request.path):
            return _error(404, "not found", {"path": "contains a control character"})
        bad = {k: f"contains a control character ({c})" for k, v in request.args.items(multi=True)
               if (c := bad_character(k) or bad_character(v))}
        if bad:
            return _error(422, "invalid query parameters", bad)
        if request.content_length is None and request.method in ("POST", "PUT", "PATCH"):
            # A chunked body has no Content-Length for Werkzeug to check up front; it silently stops
            # reading at the limit, which the parser then saw as truncated (invalid) JSON.
            if len(request.get_data(cache=True)) >= max_body:
                abort(413)
        return None

    @app.after_request
    def security_headers(resp: Response) -> Response:
        """Browser hardening on pages and API answers; TwiML is read by Twilio, not a browser."""
        if request.path.startswith("/twilio/") or resp.mimetype in ("text/xml", "application/xml"):
            return resp
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
            resp.headers.setdefault("X-Frame-Options", "DENY")
        return resp
