"""SOURCES_PATH (ivr_flows/sources.yaml): how each web form, builder or Zapier step maps onto a lead.

    sources:
      zapier:
        auth: {bearer_env: ZAPIER_TOKEN}        # or {hmac_header: X-Signature, secret_env: FORM_SECRET}
        id_field: submission_id                 # the platform's lead id (re-deliveries are no-ops)
        campaign_field: utm_campaign            # also ad_field, adgroup_field, form_field
        fields:
          name: [first_name, last_name]         # several fields are joined with a space
          phone: phone
          email: contact.email                  # dots reach into nested JSON
        defaults: {service: roofing}            # constants
        consent: {field: agree, text: "I agree to be called about my quote."}
      google-ads: {defaults: {service: roofing}}  # entries named google-ads or facebook, without auth,
                                                  # add to those adapters' own mapping
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.flows.yamlmarks import MarkedDict, parse_yaml, shown
from bot.store import states
from bot.store.leads import ZIP, LeadIn

LEAD_FIELDS = tuple(LeadIn.model_fields)
ID_KEYS = ("id_field", "campaign_field", "adgroup_field", "ad_field", "form_field")
ENTRY_KEYS = ("auth", "fields", "defaults", "consent", *ID_KEYS)
NAME_RE_OK = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class SourcesConfigError(ValueError):
    """SOURCES_PATH is unusable; one `file:line: path: problem` line per problem."""


@dataclass(frozen=True)
class Auth:
    """How a source proves itself: a bearer token, or an HMAC-SHA256 of the raw body in a header."""

    bearer_env: str | None = None
    hmac_header: str | None = None
    secret_env: str | None = None

    def secret(self) -> str | None:
        """The secret from the environment, or None when unset (the source then answers 404)."""
        return os.environ.get(self.bearer_env or self.secret_env or "") or None


@dataclass(frozen=True)
class Entry:
    """One source's mapping."""

    name: str
    auth: Auth | None
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    consent_field: str | None = None
    consent_text: str | None = None
    ids: dict[str, str] = field(default_factory=dict)  # id_field, campaign_field, ... -> payload key


def load_sources(path: Path) -> dict[str, Entry]:
    """Every entry in the file (none when it is absent); SourcesConfigError lists all problems."""
    if not path.exists():
        return {}
    name = str(path)
    data, line, message = parse_yaml(path.read_text(encoding="utf-8"))
    if message:
        raise SourcesConfigError(f"{name}:{line or 1}: {message}")
    if not isinstance(data, MarkedDict) or not isinstance(data.get("sources"), MarkedDict):
        raise SourcesConfigError(f"{name}:{getattr(data, 'line', 1)}: sources: required, a mapping of source "
                                 "name to its entry")
    problems: list[str] = []
    entries = {}
    for key, item in data["sources"].items():
        entry = _entry(name, data["sources"], str(key), item, problems)
        if entry is not None:
            entries[entry.name] = entry
    if problems:
        raise SourcesConfigError("\n".join(problems))
    return entries


def _entry(name: str, parent: MarkedDict, key: str, item: Any, problems: list[str]) -> Entry | None:
    """Check one entry, appending its problems."""
    at = f"{name}:{parent.line_of(key)}: sources.{key}"
    if not key or set(key) - NAME_RE_OK:
        problems.append(f"{at}: the name must be lowercase letters, digits, - or _ (it is the URL path)")
    if not isinstance(item, MarkedDict):
        problems.append(f"{at}: must be a mapping")
        return None

    def bad(k: str, msg: str) -> None:
        problems.append(f"{name}:{item.line_of(k)}: sources.{key}.{k}: {msg}")

    for k in sorted(set(item) - set(ENTRY_KEYS)):
        bad(k, f"unknown key (one of {', '.join(ENTRY_KEYS)})")
    auth = _auth(item.get("auth"), bad) if "auth" in item else None
    fields: dict[str, tuple[str, ...]] = {}
    raw_fields = item.get("fields", {})
    if not isinstance(raw_fields, dict):
        bad("fields", "must map lead fields to payload keys")
        raw_fields = {}
    for lead_field, src in raw_fields.items():
        where = f"fields.{lead_field}"
        if lead_field not in LEAD_FIELDS:
            bad("fields", f"{where}: not a lead field (one of {', '.join(LEAD_FIELDS)})")
        elif isinstance(src, str) and src:
            fields[lead_field] = (src,)
        elif isinstance(src, list) and src and all(isinstance(s, str) and s for s in src):
            fields[lead_field] = tuple(src)
        else:
            bad("fields", f"{where}: must be a payload key or a list of keys to join, not {shown(src)}")
    defaults = item.get("defaults", {})
    if not isinstance(defaults, dict):
        bad("defaults", "must map lead fields to constant values")
        defaults = {}
    for k in defaults:
        if k not in LEAD_FIELDS:
            bad("defaults", f"defaults.{k}: not a lead field (one of {', '.join(LEAD_FIELDS)})")
    consent = item.get("consent", {})
    if not isinstance(consent, dict) or set(consent) - {"field", "text"} or (
            consent and not all(isinstance(v, str) and v for v in consent.values())):
        bad("consent", "must be {field: <payload key of the checkbox>, text: <the consent wording shown>}")
        consent = {}
    ids = {k: str(item[k]) for k in ID_KEYS if isinstance(item.get(k), str) and item[k]}
    for k in ID_KEYS:
        if k in item and k not in ids:
            bad(k, "must be a payload key")
    if auth is not None and "phone" not in fields and "phone" not in defaults:
        bad("fields", "fields.phone: required (the payload key holding the phone number)")
    return Entry(key, auth, fields, dict(defaults), consent.get("field"), consent.get("text"), ids)


def _auth(raw: Any, bad: Any) -> Auth | None:
    """A bearer_env, or an hmac_header with its secret_env."""
    if isinstance(raw, dict) and set(raw) == {"bearer_env"} and isinstance(raw["bearer_env"], str):
        return Auth(bearer_env=raw["bearer_env"])
    if (isinstance(raw, dict) and set(raw) == {"hmac_header", "secret_env"}
            and all(isinstance(v, str) and v for v in raw.values())):
        return Auth(hmac_header=raw["hmac_header"], secret_env=raw["secret_env"])
    bad("auth", "must be {bearer_env: ENV_NAME} or {hmac_header: Header-Name, secret_env: ENV_NAME}")
    return None


def lookup(payload: dict[str, Any], key: str) -> Any:
    """payload[key], where dots reach into nested objects; None when absent."""
    if key in payload:
        return payload[key]
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def apply(entry: Entry, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(lead fields, ids) from a payload: mapped fields over constant defaults, joined names, consent."""
    data: dict[str, Any] = dict(entry.defaults)
    for lead_field, keys in entry.fields.items():
        parts = [lookup(payload, k) for k in keys]
        texts = [str(p).strip() for p in parts if p is not None and str(p).strip()]
        if texts:
            data[lead_field] = " ".join(texts) if len(keys) > 1 else _scalar(parts[0])
    if "zip" in data or "state" in data:  # a postcode that is not a US ZIP must not cost the lead
        data.update(us_location(data.pop("zip", None), data.pop("state", None)))
    if entry.consent_field:
        data["consent"] = consent_given(lookup(payload, entry.consent_field))
        if entry.consent_text:
            data.setdefault("consent_text", entry.consent_text)
    ids = {k.removesuffix("_field"): _text(lookup(payload, v)) for k, v in entry.ids.items()}
    return data, ids


YES = {"true", "1", "yes", "y", "on", "checked", "agree", "agreed", "i agree", "accept", "accepted", "x"}


def _scalar(value: Any) -> Any:
    """A number a form sent for a text field (a phone, a ZIP) as its digits; other values as sent."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def consent_given(value: Any) -> bool:
    """A consent box as forms send it: true, 1, "yes", "on", "I agree", ["yes"]. Anything else,
    unknown wording included, is no consent: never guessed the other way."""
    if isinstance(value, list | tuple):
        return any(consent_given(v) for v in value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    text = " ".join(str(value or "").lower().replace("!", " ").replace(".", " ").split())
    return text in YES


def _text(value: Any) -> str | None:
    """An id as text (platforms send numbers or strings)."""
    return None if value is None or value == "" else str(value)[:255]


def us_location(zip_code: object, state: object) -> dict[str, str]:
    """The ZIP code and state an ad form gave, as the intake contract's `zip` and `state`, for the
    calling rules (a ported or moved number must not escape its state's stricter hours). Only
    values that are a US ZIP or state are taken; anything else (a Canadian postcode, a typo) stays
    in the source's fields and never costs the lead a 422."""
    out: dict[str, str] = {}
    text = str(zip_code).strip() if zip_code else ""
    if ZIP.match(text) and states.state_for_zip(text):
        out["zip"] = text
    code = states.state_code(str(state).strip()) if state else None
    if code:
        out["state"] = code
    return out
