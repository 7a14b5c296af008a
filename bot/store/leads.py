"""Lead validation and creation: the intake contract, independent of Flask."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, cast

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as pn_timezone
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import Connection, String, Table, bindparam, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from bot.flows.safetext import bad_character, strip_controls
from bot.store import states
from bot.store.database import WriterLock
from bot.store.prepared import RawSession
from bot.store.tables import Event, IdempotencyKey, Lead, LeadStatus, OptOut, new_id, utcnow
from bot.store.timeline import EventType

LEADS, EVENTS, OPT_OUTS, KEYS = (cast(Table, m.__table__) for m in (Lead, Event, OptOut, IdempotencyKey))

# Statements built once: building one per request costs four times what executing it does.
INSERT_LEAD, INSERT_EVENT = insert(LEADS), insert(EVENTS)
BY_KEY = select(LEADS.c.id, LEADS.c.status).where(LEADS.c.idempotency_key == bindparam("key"))
BY_KEY_OF_DUPLICATE = (select(LEADS.c.id, LEADS.c.status).join(KEYS, KEYS.c.lead_id == LEADS.c.id)
                       .where(KEYS.c.key == bindparam("key")))
INSERT_KEY = insert(KEYS)
STATUS = select(LEADS.c.status).where(LEADS.c.id == bindparam("lead_id"))
# PostgreSQL: one intake at a time per number, until its transaction ends (SQLite: the writer lock).
SAME_NUMBER_LOCK = select(func.pg_advisory_xact_lock(func.hashtext(bindparam("phone", type_=String))))
# One query answers both "is there a twin?" and "did this number opt out?".
TWIN_OR_OPT_OUT = select(
    select(LEADS.c.id).where(LEADS.c.phone == bindparam("phone"), LEADS.c.created_at >= bindparam("since"))
    .order_by(LEADS.c.created_at).limit(1).scalar_subquery(),
    exists().where(OPT_OUTS.c.phone == bindparam("phone")),
)

# The same person by email from another source (which may have another number for them); asked only
# when no phone twin exists and an email was given. Within one source, two numbers are two people.
TWIN_BY_EMAIL = (select(LEADS.c.id)
                 .where(LEADS.c.email == bindparam("email"), LEADS.c.created_at >= bindparam("since"),
                        LEADS.c.source.is_distinct_from(bindparam("source")))
                 .order_by(LEADS.c.created_at).limit(1))

MAX_BODY_BYTES = 64 * 1024
ZIP = re.compile(r"^\d{5}(-\d{4})?$")
TRUTHY = {"1", "true", "yes", "on", "y", "t"}
FALSY = {"0", "false", "no", "off", "n", "f", ""}
TEXT_FIELDS = ("name", "phone", "email", "service", "source", "consent_text", "consent_version", "page_url",
               "message")
MULTILINE_FIELDS = ("message", "consent_text")
# The channel rules of LeadIn._channel_needs, for the OpenAPI document: no channel means a call.
CHANNEL_NEEDS = [
    {"if": {"properties": {"channel": {"enum": ["call", "sms"]}}},
     "then": {"required": ["consent"], "properties": {"consent": {"const": True}}}},
    {"if": {"required": ["channel"], "properties": {"channel": {"const": "email"}}},
     "then": {"required": ["email"]}},
]


def parse_phone(raw: str, region: str) -> phonenumbers.PhoneNumber:
    """Parse a phone the way people write it; raise ValueError with a human reason."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("impossible phone number (wrong length for its country)")
    if not phonenumbers.is_valid_number(number):
        raise ValueError("invalid phone number (no such number range)")
    return number


def e164(number: phonenumbers.PhoneNumber) -> str:
    """Format as +15125550100."""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Optional free text cut to its limit (with a warning) rather than refused: a lead from an ad
# platform or Zapier that gets a 422 is never sent again.
TRUNCATED = {"message": 2000, "service": 80, "source": 80, "consent_version": 80, "consent_text": 2000,
             "page_url": 2048}
INPUT_WARNING = "input_warning"  # timeline event: what was accepted in a changed form, and the raw value


def check_email(value: str) -> str:
    """Syntax check only (deliverability would put DNS on the hot path); ValueError with the reason."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


class LeadIn(BaseModel):
    """The public intake contract for POST /leads."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True,
                              json_schema_extra={"allOf": CHANNEL_NEEDS})
    # A bad optional field is dropped or cut, not refused: what changed, and the email as sent.
    _warnings: dict[str, str] = PrivateAttr(default_factory=dict)
    _email_raw: str | None = PrivateAttr(None)

    name: str = Field(min_length=1, max_length=120)
    phone: str = Field(min_length=3, max_length=40, examples=["+15125550100", "(512) 555-0100"],
                       description="E.164 (+15125550100), or a national number read with DEFAULT_REGION")
    email: str | None = Field(None, max_length=254)
    service: str | None = Field(None, max_length=80)
    channel: Literal["call", "sms", "email"] = "call"
    source: str | None = Field(None, max_length=80)
    consent: bool = False
    consent_text: str | None = Field(None, max_length=2000)
    consent_version: str | None = Field(None, max_length=80)
    page_url: str | None = Field(None, max_length=2048)
    message: str | None = Field(None, max_length=2000)
    language: Literal["en", "es"] = "en"
    state: str | None = Field(None, max_length=40)  # US state, for the calling rules: "FL" or "Florida"
    zip: str | None = Field(None, max_length=10)

    @field_validator("consent", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        """Form posts send consent as 'on', 'true', '1'."""
        if isinstance(v, str):
            low = v.strip().lower()
            if low in TRUTHY:
                return True
            if low in FALSY:
                return False
            raise ValueError("must be a boolean (true/false)")
        return v

    @field_validator("email", "service", "source", "message", "consent_text", "page_url", "state", "zip",
                     mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        """An empty form field means 'not given'."""
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str, info: ValidationInfo) -> str:
        """Store phones as E.164; reject invalid or impossible numbers."""
        region = (info.context or {}).get("region", "US")
        return e164(parse_phone(v, region))

    @field_validator("state")
    @classmethod
    def _state(cls, v: str | None) -> str | None:
        """A US state's code or name, stored as the two-letter code."""
        if v is None:
            return None
        code = states.state_code(v)
        if code is None:
            raise ValueError("not a US state: use its two-letter code (FL) or its name (Florida)")
        return code

    @field_validator("zip")
    @classmethod
    def _zip(cls, v: str | None) -> str | None:
        """A US ZIP code, 12345 or 12345-6789."""
        if v is None:
            return None
        if not ZIP.match(v) or states.state_for_zip(v) is None:
            raise ValueError("not a US ZIP code: expected 12345 or 12345-6789")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        """Syntax check only: deliverability would put DNS on the hot path."""
        return None if v is None else check_email(v)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_the_lead(cls, data: Any, handler: Any) -> LeadIn:
        """A call or text lead with a bad email, or over-long optional text, is kept with a warning."""
        warnings: dict[str, str] = {}
        raw_email = None
        if isinstance(data, dict):
            data = dict(data)
            email = data.get("email")
            if data.get("channel") in (None, "", "call", "sms") and isinstance(email, str) and email.strip():
                try:
                    check_email(email.strip())
                except ValueError as exc:  # the phone reaches them; the address is never used
                    warnings["email"] = f"ignored, not a usable address: {exc}"
                    raw_email, data["email"] = email[:254], None
            language = data.get("language")
            if isinstance(language, str) and language.strip().lower() not in ("", "en", "es"):
                base = language.strip().lower().replace("_", "-").split("-")[0]
                data["language"] = base if base in ("en", "es") else "en"
                if base not in ("en", "es"):
                    warnings["language"] = f"'{language[:20]}' is not offered; using en"
            for key, limit in TRUNCATED.items():
                value = data.get(key)
                if isinstance(value, str) and len(value.strip()) > limit:
                    data[key] = value.strip()[:limit]
                    warnings[key] = f"cut to {limit} characters (was {len(value.strip())})"
        model = handler(data)
        model._warnings, model._email_raw = warnings, raw_email
        return model

    @property
    def warnings(self) -> dict[str, str]:
        """Fields accepted in a changed form, each with why (empty when the lead came in as sent)."""
        return self._warnings

    @property
    def email_raw(self) -> str | None:
        """The email as sent, when it was unusable and dropped."""
        return self._email_raw

    @model_validator(mode="wrap")
    @classmethod
    def _channel_needs(cls, data: Any, handler: Any, info: ValidationInfo) -> LeadIn:
        """An email lead needs an address; calls and texts need consent (TCPA) unless REQUIRE_CONSENT=false.

        Checked on the raw input too when other fields fail, so one 422 names every bad field.
        """
        required = (info.context or {}).get("require_consent", True)
        try:
            lead = handler(data)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            extra = [_error(field, msg) for field, msg in _needs(data, required).items() if field not in bad]
            if not extra:
                raise
            raise ValidationError.from_exception_data(exc.title, [*exc.errors(), *extra]) from None
        if errors := _needs(lead.model_dump(), required):
            raise ValidationError.from_exception_data(cls.__name__, [_error(f, m) for f, m in errors.items()])
        return lead

    @model_validator(mode="wrap")
    @classmethod
    def _strip_controls(cls, data: Any, handler: Any) -> LeadIn:
        """Control characters are removed, with a warning: they broke TwiML (a NUL ended the call) and
        PostgreSQL (a NUL was a 500 and a lost lead). Tab and line breaks stay in the free-text fields."""
        removed: dict[str, str] = {}
        if isinstance(data, dict):
            data = dict(data)
            for key in TEXT_FIELDS:
                value, multiline = data.get(key), key in MULTILINE_FIELDS
                if not isinstance(value, str):
                    continue
                value = value if multiline else value.strip()  # a trailing newline is only whitespace
                if found := bad_character(value, multiline):
                    data[key] = strip_controls(value, multiline)
                    removed[key] = f"control characters removed (first: {found})"
        lead = handler(data)
        lead._warnings = {**lead._warnings, **removed}
        return lead


def _error(field: str, message: str) -> InitErrorDetails:
    """A pydantic error on `field`."""
    return InitErrorDetails(type=PydanticCustomError("channel_needs", message), loc=(field,), input=None)


def _needs(data: Any, consent_required: bool = True) -> dict[str, str]:
    """What the channel requires and the data lacks, as {field: message}; raw or validated data."""
    if not isinstance(data, dict):
        return {}
    channel = data.get("channel") or "call"
    consent = data.get("consent")
    if isinstance(consent, str):
        consent = consent.strip().lower() in TRUTHY
    elif isinstance(consent, int | float):
        consent = consent == 1
    email = data.get("email")
    if channel == "email" and not (isinstance(email, str) and email.strip()):
        return {"email": "required when channel is 'email'"}
    if channel in ("call", "sms") and consent is not True and consent_required:
        return {"consent": f"required (true) before we may {channel} this number"}
    return {}


def field_errors(exc: Any) -> dict[str, str]:
    """Turn a pydantic ValidationError into {field: message}, naming each bad field."""
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not loc and ": " in msg:  # model-level errors name their field first
            loc, msg = msg.split(": ", 1)
        out.setdefault(loc or "body", msg)
    return out


def lead_timezone(phone: str | phonenumbers.PhoneNumber) -> str | None:
    """The lead's time zone(s) from the number, comma-separated when it spans several."""
    number = phonenumbers.parse(phone) if isinstance(phone, str) else phone
    zones = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else (",".join(zones) if zones else None)


def insert_event(conn: Connection | RawSession, lead_id: str, type_: str, at: datetime | None = None,
                 **data: Any) -> None:
    """timeline.record() as one Core INSERT, for the hot paths where the ORM's flush is most of the cost."""
    conn.execute(INSERT_EVENT, {"lead_id": lead_id, "type": type_, "at": at or utcnow(), "data": data})


def create_lead(
    conn: RawSession, data: LeadIn, evidence: dict[str, Any], idempotency_key: str | None, window_s: int,
    writer: WriterLock,
) -> Created:
    """Insert a lead (or find its earlier twin) and commit; returns a Created (lead id, status, ...).

    Prepared Core statements on the pooled DB-API connection (bot.store.prepared): an ORM session, or
    even SQLAlchemy's per-execute machinery, costs more than the SQL itself on this path, which
    every lead takes. `writer` (bot.store.database.WriterLock) is held from the look for a twin to the
    commit.
    """
    if idempotency_key and (found := _by_key(conn, idempotency_key)):
        return Created(found.id, found.status, False, replay=True)
    number = phonenumbers.parse(data.phone)  # outside the lock: it is held only for the SQL
    place = phonenumbers.region_code_for_number(number), lead_timezone(number)
    with writer.held():  # the look for a twin and the insert, as one: a double-clicked form is one lead
        return _create_or_find(conn, data, evidence, idempotency_key, window_s, place)


def _create_or_find(
    conn: RawSession, data: LeadIn, evidence: dict[str, Any], idempotency_key: str | None, window_s: int,
    place: tuple[str | None, str | None],
) -> Created:
    """create_lead() under the writer lock (SQLite) or the number's advisory lock (PostgreSQL):
    two requests for one number at once used to both find no twin, and both were called."""
    if conn.dialect.name == "postgresql":
        conn.first(SAME_NUMBER_LOCK, {"phone": data.phone})  # until this transaction ends
    since = utcnow() - timedelta(seconds=window_s)
    twin_id, opted_out = conn.first(TWIN_OR_OPT_OUT, {"phone": data.phone, "since": since})
    if not twin_id and data.email:
        by_email = conn.first(TWIN_BY_EMAIL, {"email": data.email, "since": since, "source": data.source})
        twin_id = by_email.id if by_email else None
    if twin_id:
        status = conn.first(STATUS, {"lead_id": twin_id}).status
        insert_event(conn, twin_id, EventType.DUPLICATE, source=data.source, idempotency_key=idempotency_key)
        try:
            if idempotency_key:  # a replay after the window must find this lead, not make another
                conn.execute(INSERT_KEY, {"key": idempotency_key, "lead_id": twin_id, "at": utcnow()})
            conn.commit()
        except IntegrityError:  # the same key's other request got here first: it is that replay
            conn.rollback()
            return Created(twin_id, status, False, replay=True)
        return Created(twin_id, status, False)
    now = utcnow()
    status, reason = ((LeadStatus.OPTED_OUT.value, "number opted out earlier") if opted_out
                      else (LeadStatus.RECEIVED.value, None))
    lead_id = new_id()
    lead = dict(
        id=lead_id, name=data.name, phone=data.phone, email=data.email, service=data.service,
        channel=data.channel, source=data.source, message=data.message, language=data.language,
        region=place[0], timezone=place[1],
        state=data.state, zip=data.zip,
        consent=data.consent, consent_at=now if data.consent else None,
        consent_text=" | ".join(x for x in (data.consent_version, data.consent_text) if x) or None,
        consent_ip=evidence.get("ip"), consent_user_agent=(evidence.get("user_agent") or "")[:512] or None,
        consent_page_url=data.page_url, idempotency_key=idempotency_key, status=status, status_reason=reason,
        created_at=now, updated_at=now,
    )
    try:
        conn.execute(INSERT_LEAD, lead)
        insert_event(conn, lead_id, EventType.RECEIVED, at=now, source=data.source, channel=data.channel)
        if data.warnings:
            insert_event(conn, lead_id, INPUT_WARNING, at=now, fields=data.warnings,
                         **({"email_raw": data.email_raw} if data.email_raw else {}))
        conn.commit()
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: return its lead.
        conn.rollback()
        if not idempotency_key or (found := _by_key(conn, idempotency_key)) is None:
            raise
        return Created(found.id, found.status, False, replay=True)
    return Created(lead_id, status, True)


class Created(NamedTuple):
    """create_lead's answer. `replay`: found by its Idempotency-Key, the same request again (not a new
    submission, so not fresh intent)."""

    lead_id: str
    status: str
    created: bool
    replay: bool = False


def _by_key(conn: RawSession, key: str) -> Any:
    """The lead an Idempotency-Key made, or found as a duplicate; None."""
    return conn.first(BY_KEY, {"key": key}) or conn.first(BY_KEY_OF_DUPLICATE, {"key": key})


def newer_lead(s: Any, lead: Lead) -> str | None:
    """The latest later request from the lead's number (past the dedupe window, so a lead of its
    own): it speaks for the number now, so the older lead's deferred call and touches stand down."""
    return s.scalar(select(Lead.id).where(Lead.phone == lead.phone, Lead.created_at > lead.created_at)
                    .order_by(Lead.created_at.desc()).limit(1))
