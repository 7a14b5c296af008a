"""Facebook Lead Ads: the leadgen notification's ids, the Graph fetch job, and field_data as a Submission.

https://developers.facebook.com/docs/graph-api/webhooks/getting-started/webhooks-for-leadgen
https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import requests
from pydantic import ValidationError
from rq import Retry, get_current_job

from bot.runtime.services import Services, current
from bot.sources.ingest import Submission, ingest, validate
from bot.sources.mapping import Entry, apply, load_sources, us_location
from bot.store.leads import field_errors

log = logging.getLogger(__name__)

SOURCE = "facebook"
FETCH_JOB = "bot.sources.facebook.fetch_lead"
# Rate limits and an expired token heal with time (or with a person refreshing the token): retry
# over about a day, then the job waits in RQ's failed registry with the reason.
FETCH_RETRY = Retry(max=8, interval=[30, 120, 600, 1800, 3600, 7200, 14400, 43200])
TIMEOUT = (3.05, 10.0)
GRAPH_FIELDS = ("id,created_time,ad_id,adset_id,campaign_id,form_id,field_data,custom_disclaimer_responses,"
                "is_organic")
FIELDS = {"full_name": "name", "phone_number": "phone", "email": "email", "work_email": "email",
          "work_phone_number": "phone"}
RATE_LIMIT_CODES = {4, 17, 32, 613, 80001}  # app, user, page, custom and Pages API limits
TOKEN_CODES = {102, 190}  # session / access token expired, revoked or invalid


class GraphError(RuntimeError):
    """The Graph API refused; `retryable` says whether time (or a new token) can fix it."""

    def __init__(self, leadgen_id: str, status: int, error: dict[str, Any]) -> None:
        self.code, self.subcode = error.get("code"), error.get("error_subcode")
        self.retryable = status == 0 or status >= 500 or self.code in RATE_LIMIT_CODES | TOKEN_CODES
        kind = ("rate limited" if self.code in RATE_LIMIT_CODES else
                "page access token expired or invalid: refresh FACEBOOK_PAGE_ACCESS_TOKEN"
                if self.code in TOKEN_CODES else "error")
        super().__init__(f"Graph {kind} fetching lead {leadgen_id}: HTTP {status} code "
                         f"{self.code}/{self.subcode}: {error.get('message')}")


def signed(app_secret: str, body: bytes, header: str) -> bool:
    """X-Hub-Signature-256 is 'sha256=' + hex HMAC-SHA256 of the raw body with the app secret."""
    expected = "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), (header or "").strip().encode())


def leadgen_changes(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The `value` of every leadgen change in a notification."""
    out = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value")
            if change.get("field") == "leadgen" and isinstance(value, dict) and value.get("leadgen_id"):
                out.append(value)
    return out


def fetch_lead(leadgen_id: str, hint: dict[str, Any] | None = None) -> str:
    """RQ job: read one lead from the Graph API and ingest it; GraphError is retried when it can heal."""
    svc = current()
    lead = fetch(svc, leadgen_id)
    sub = submission(lead, hint or {}, load_sources(svc.settings.sources_path).get(SOURCE))
    try:
        lead_in = validate(svc, sub)
    except ValidationError as exc:
        # Nothing to call, and refetching will not change the form's values: no retries (it used to
        # fetch Graph nine times over a day), and the managers get the lead's details at once.
        errors = field_errors(exc)
        job = get_current_job()
        if job is not None:
            job.retries_left = 0
        tell_managers_unusable(svc, leadgen_id, sub, errors)
        raise ValueError(f"facebook lead {leadgen_id} is not a usable lead: {errors}") from None
    result = ingest(svc, sub, lead_in)
    return result.lead_id


def tell_managers_unusable(svc: Services, leadgen_id: str, sub: Submission, errors: dict[str, Any]) -> None:
    """A lead Facebook delivered that cannot be stored (a phone number no one can dial, no name):
    email the managers what the prospect typed, so a person follows it up."""
    from email.message import EmailMessage

    from handoff.mail import send_mail
    from handoff.roster import HandoffError
    from handoff.roster_cache import roster_for

    try:
        managers = [m.email for m in roster_for(svc).managers]
    except HandoffError:
        log.error("facebook lead %s unusable (%s), and the roster too: nobody to tell", leadgen_id, errors)
        return
    typed = {**{k: v for k, v in sub.data.items() if k in ("name", "phone", "email")}, **(sub.fields or {})}
    msg = EmailMessage()
    msg["From"], msg["To"] = svc.settings.mail_from, ", ".join(managers)
    msg["Subject"] = f"Unusable Facebook lead: {str(typed.get('name') or 'no name')[:80]}"
    msg["X-Leadbot-Kind"] = "unusable_source_lead"
    msg.set_content("\n".join([
        f"Facebook delivered lead {leadgen_id} (form {sub.form_id or '?'}), and leadbot cannot store or",
        "call it. Reach the prospect another way, and check the form's questions.", "",
        *(f"Problem: {field}: {why}" for field, why in errors.items()), "",
        *(f"{k}: {v}" for k, v in typed.items()),
    ]))
    send_mail(svc.settings, msg, svc.sessions)


def fetch(svc: Services, leadgen_id: str) -> dict[str, Any]:
    """GET {FACEBOOK_GRAPH_BASE_URL}/{leadgen_id} with the page token and its appsecret_proof."""
    s = svc.settings
    token = s.facebook_page_access_token or ""
    params = {"access_token": token, "fields": GRAPH_FIELDS}
    if s.facebook_app_secret:
        params["appsecret_proof"] = hmac.new(s.facebook_app_secret.encode(), token.encode(),
                                             hashlib.sha256).hexdigest()
    url = f"{s.facebook_graph_base_url.rstrip('/')}/{leadgen_id}"
    try:
        resp = requests.get(url, params=params, timeout=TIMEOUT)
    except requests.RequestException as exc:
        # requests names the full URL in its message, the page token and appsecret_proof with it: that
        # reached the worker's log, RQ's failed registry and the console's health page.
        raise GraphError(leadgen_id, 0, {"message": f"Graph unreachable: {type(exc).__name__}"}) from None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code != 200 or "error" in body:
        err = GraphError(leadgen_id, resp.status_code, body.get("error") or {"message": resp.text[:300]})
        log.error("%s", err)
        job = get_current_job()
        if job is not None and not err.retryable:
            job.retries_left = 0  # a bad lead id will not heal: straight to the failed registry
        raise err
    return body


def submission(lead: dict[str, Any], hint: dict[str, Any], entry: Entry | None) -> Submission:
    """Map a Graph lead: field_data to the intake contract, custom_disclaimer_responses to consent."""
    answers: dict[str, Any] = {}
    for item in lead.get("field_data") or []:
        values = (item or {}).get("values") or []
        if item.get("name") and values:
            answers[str(item["name"])] = ", ".join(str(v) for v in values)
    data: dict[str, Any] = {}
    for name, lead_field in FIELDS.items():
        if answers.get(name) and lead_field not in data:
            data[lead_field] = answers[name]
    if "name" not in data:
        data["name"] = " ".join(answers[k].strip() for k in ("first_name", "last_name") if answers.get(k))
    data.update(us_location(answers.get("zip_code") or answers.get("post_code"), answers.get("state")))
    form = _text(lead.get("form_id") or hint.get("form_id"))
    boxes = [b for b in lead.get("custom_disclaimer_responses") or [] if isinstance(b, dict)]
    if boxes:
        checked = {str(b.get("checkbox_key")): str(b.get("is_checked")).lower() in ("1", "true")
                   for b in boxes}
        data["consent"] = all(checked.values())
        data["consent_text"] = f"Facebook lead form {form} disclaimer checkboxes: " + ", ".join(
            f"{k}={'checked' if v else 'unchecked'}" for k, v in checked.items())
    else:
        data["consent"] = True
        data["consent_text"] = f"Submitted Facebook lead form {form} asking to be contacted"
    if entry is not None:
        mapped, _ = apply(entry, answers)
        data.update(mapped)
    if not data.get("consent") and data.get("email"):
        data["channel"] = "email"  # no consent to call or text: the lead still hears from us
    return Submission(
        source=SOURCE, data=data, external_id=_text(lead.get("id") or hint.get("leadgen_id"), 255),
        campaign_id=_text(lead.get("campaign_id")),
        adgroup_id=_text(lead.get("adset_id") or hint.get("adgroup_id")),
        ad_id=_text(lead.get("ad_id") or hint.get("ad_id")), form_id=form,
        fields={**answers, **{k: lead[k] for k in ("created_time", "is_organic") if k in lead},
                **({"page_id": str(hint["page_id"])} if hint.get("page_id") else {})},
    )


def _text(value: Any, size: int = 64) -> str | None:
    """An id as text."""
    return None if value is None or value == "" else str(value)[:size]
