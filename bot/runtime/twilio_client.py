"""The one Twilio code path: the official client, with every REST domain redirectable."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.runtime import pacing
from bot.settings import Settings

# Twilio REST errors that no retry can fix, in words: the lead's reason and the managers' email say them.
PERMANENT_TWILIO_CODES = {
    13223: "invalid phone number format",
    13224: "invalid phone number",
    13225: "number blocked",
    13227: "geographic permission missing",
    21211: "invalid 'To' phone number",
    21214: "'To' number cannot be reached",
    21215: "geographic permission missing",
    21216: "call blocked",
    21217: "phone number does not appear to be valid",
    21407: "number not supported",
    21408: "region not enabled",
    21610: "recipient has unsubscribed (STOP)",
    21612: "'To' number not reachable by SMS",
    21614: "'To' number is not a mobile number",
}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def describe(exc: TwilioRestException) -> str:
    """A Twilio REST error as a manager reads it: what it means, when known, then Twilio's own words."""
    raw = f"Twilio {exc.status} error {exc.code}: {exc.msg}"
    known = PERMANENT_TWILIO_CODES.get(exc.code) if isinstance(exc.code, int) else None
    return f"{known} ({raw})" if known else raw
# Simulator account: any SID works there; the auth token is per-install and never a shared default.
SIMULATOR_ACCOUNT_SID = "AC" + "0" * 32


class PacedHttpClient(TwilioHttpClient):
    """Every call or text created through the official client waits for the shared limiter first."""

    limiter: pacing.Limiter | None = None

    def request(self, method, url, params=None, data=None, headers=None, auth=None,  # noqa: ANN001
                timeout=None, allow_redirects=False):
        """Take a slot from TWILIO_CPS for Calls.json and Messages.json, then send."""
        if self.limiter is not None and pacing.is_send(method, url):
            pacing.after_wait(self.limiter.acquire())  # a long wait: the gate again (SendStopped)
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


class RebasedHttpClient(PacedHttpClient):
    """Sends every request the SDK makes to any *.twilio.com domain to one base URL instead."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        super().__init__(timeout=timeout)
        parts = urlsplit(base_url.rstrip("/"))
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        if parts.hostname in LOOPBACK_HOSTS and self.session is not None:
            # No proxy applies to loopback; without this, requests re-reads the whole environment
            # for proxy settings on every call (about half a millisecond each).
            self.session.trust_env = False

    def request(self, method, url, params=None, data=None, headers=None, auth=None,  # noqa: ANN001
                timeout=None, allow_redirects=False):
        """Rewrite the host (api., voice., messaging., ...) and forward to the real client."""
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit((self._scheme, self._netloc, self._prefix + parts.path, parts.query, ""))
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


def auth_token(settings: Settings) -> str:
    """The token webhooks are signed with: Twilio's, or a random per-install simulator secret."""
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    path = Path(settings.data_dir) / "simulator_token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
    return path.read_text().strip()


def account_sid(settings: Settings) -> str:
    """The account SID in use (the simulator's when Twilio is not configured)."""
    return settings.twilio_account_sid or SIMULATOR_ACCOUNT_SID


def api_base(settings: Settings) -> str | None:
    """Where REST calls go: TWILIO_API_BASE_URL, else the built-in simulator, else Twilio itself."""
    if settings.twilio_api_base_url:
        return settings.twilio_api_base_url
    if settings.simulated_telephony:
        return settings.base_url + "/simulator/api"
    return None


def make_client(settings: Settings, timeout: float = 10.0, limiter: pacing.Limiter | None = None) -> Client:
    """Build the official client; with a base URL, every domain it calls is redirected there."""
    base = api_base(settings)
    http = RebasedHttpClient(base, timeout=timeout) if base else PacedHttpClient(timeout=timeout)
    http.limiter = limiter
    return Client(account_sid(settings), auth_token(settings), http_client=http)
