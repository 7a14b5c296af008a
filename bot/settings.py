"""Settings read once from the environment into one typed object (12-factor)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"

# Secrets a production start refuses to run without.
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "LEAD_API_KEYS",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_PHONE_NUMBER",
    "SMTP_URL",
)


# The documented values of LEADBOT_ENV; anything else (prod, Production-1, staging) refuses to start
# rather than silently running with development defaults.
ENVIRONMENTS = ("development", "production")


class ConfigError(RuntimeError):
    """The environment cannot start the app; the message lists every missing name."""


class Settings(BaseSettings):
    """Every knob of leadbot; names are the public environment variables."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    env: str = Field("development", alias="LEADBOT_ENV")
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(5000, alias="PORT")
    secret_key: str | None = Field(None, alias="SECRET_KEY")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    twilio_account_sid: str | None = Field(None, alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str | None = Field(None, alias="TWILIO_AUTH_TOKEN")
    twilio_phone_number: str | None = Field(None, alias="TWILIO_PHONE_NUMBER")
    twilio_api_base_url: str | None = Field(None, alias="TWILIO_API_BASE_URL")
    public_base_url: str | None = Field(None, alias="PUBLIC_BASE_URL")
    lead_api_keys: str | None = Field(None, alias="LEAD_API_KEYS")
    smtp_url: str | None = Field(None, alias="SMTP_URL")
    mail_from: str = Field("leadbot@localhost", alias="MAIL_FROM")
    roster_path: Path = Field(ROOT / "handoff" / "roster.yaml", alias="ROSTER_PATH")
    flows_dir: Path = Field(ROOT / "ivr_flows", alias="FLOWS_DIR")
    default_region: str = Field("US", alias="DEFAULT_REGION")
    dedupe_window_seconds: int = Field(600, alias="DEDUPE_WINDOW_SECONDS")
    twilio_timeout_seconds: float = Field(10.0, alias="TWILIO_TIMEOUT_SECONDS")
    ring_timeout_seconds: int = Field(25, alias="RING_TIMEOUT_SECONDS")
    # Unset: ivr_flows/calling_rules.yaml decides. Set: one window for every lead (see README).
    calling_hours: str | None = Field(None, alias="CALLING_HOURS")
    require_consent: bool = Field(True, alias="REQUIRE_CONSENT")
    ack_text: bool = Field(False, alias="ACK_TEXT")
    business_name: str = Field("leadbot", alias="BUSINESS_NAME")
    # Calls and texts a second through Twilio; unset = 1 on real Twilio, unlimited on a simulator.
    twilio_cps_setting: float | None = Field(None, alias="TWILIO_CPS")
    sweep_interval_seconds: float = Field(5.0, alias="SWEEP_INTERVAL_SECONDS")
    handoff_sla_seconds: int = Field(300, alias="HANDOFF_SLA_SECONDS")
    # How long the link in a handoff text opens the rep's lead page (/console/r/<token>).
    rep_link_hours: float = Field(7 * 24, alias="REP_LINK_HOURS", gt=0)
    # Reverse proxies in front of the web (nginx, a load balancer): their X-Forwarded-For/-Proto give the
    # client's address (consent evidence, the console's per-IP lockout). 0 trusts no such header.
    trusted_proxies: int = Field(0, alias="TRUSTED_PROXIES", ge=0, le=5)
    queue_name: str = Field("leadbot", alias="QUEUE_NAME")
    data_dir: Path = Field(VAR, alias="LEADBOT_DATA_DIR")
    # Lead sources (bot/sources) and CRM webhooks out (bot/runtime/crm.py): an adapter whose secret
    # is unset answers 404, as if it did not exist.
    google_ads_key: str | None = Field(None, alias="GOOGLE_ADS_KEY")
    google_ads_call_tests: bool = Field(False, alias="GOOGLE_ADS_CALL_TESTS")
    facebook_app_secret: str | None = Field(None, alias="FACEBOOK_APP_SECRET")
    facebook_verify_token: str | None = Field(None, alias="FACEBOOK_VERIFY_TOKEN")
    facebook_page_access_token: str | None = Field(None, alias="FACEBOOK_PAGE_ACCESS_TOKEN")
    facebook_graph_base_url: str = Field("https://graph.facebook.com/v21.0", alias="FACEBOOK_GRAPH_BASE_URL")
    sources_path: Path = Field(ROOT / "ivr_flows" / "sources.yaml", alias="SOURCES_PATH")
    webhooks_path: Path | None = Field(None, alias="WEBHOOKS_PATH")

    @field_validator("env", mode="before")
    @classmethod
    def _known_env(cls, v: object) -> object:
        """LEADBOT_ENV is one of ENVIRONMENTS, in any case."""
        value = str(v).strip().lower() if v is not None else "development"
        if value not in ENVIRONMENTS:
            raise ValueError(f"LEADBOT_ENV must be one of {', '.join(ENVIRONMENTS)} (any case), not {v!r}")
        return value

    @property
    def production(self) -> bool:
        """True when LEADBOT_ENV=production: no embedded defaults, secrets required."""
        return self.env == "production"

    @property
    def api_keys(self) -> list[str]:
        """The intake bearer tokens, split from LEAD_API_KEYS."""
        return [k.strip() for k in (self.lead_api_keys or "").split(",") if k.strip()]

    @property
    def simulated_telephony(self) -> bool:
        """No Twilio credentials at all means the built-in simulator answers the REST calls.

        Never with a real auth token (the simulator would sign with it and accept it) or in production.
        """
        return not (self.twilio_account_sid or self.twilio_auth_token or self.production)

    @property
    def twilio_cps(self) -> float:
        """Calls and texts per second for the shared limiter; 0 means unlimited."""
        if self.twilio_cps_setting is not None:
            return max(self.twilio_cps_setting, 0.0)
        real = self.twilio_account_sid and not self.twilio_api_base_url
        return 1.0 if real else 0.0

    @property
    def caller_id(self) -> str:
        """The number calls and texts come from (a simulator number when unset)."""
        return self.twilio_phone_number or "+15005550006"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL; SQLite under the data dir by default."""
        return self.database_url or f"sqlite:///{self.data_dir / 'leadbot.db'}"

    @property
    def base_url(self) -> str:
        """Where Twilio reaches us (no trailing slash)."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def check(self) -> None:
        """Raise ConfigError naming every missing secret when running in production."""
        if not self.production:
            return
        field_by_alias = {f.alias: name for name, f in type(self).model_fields.items()}
        missing = [a for a in PRODUCTION_REQUIRED if not getattr(self, field_by_alias[a])]
        if missing:
            raise ConfigError("missing required settings: " + ", ".join(missing))
