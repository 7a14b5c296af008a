"""Google Ads lead form webhook: the documented JSON (google_key, lead_id, user_column_data) as a Submission.

https://developers.google.com/google-ads/webhook/docs/implementation
"""

from __future__ import annotations

from typing import Any

from bot.sources.ingest import Submission
from bot.sources.mapping import Entry, apply, us_location

SOURCE = "google-ads"
# Google's column ids -> the intake contract; other columns (custom questions) stay in `fields`.
COLUMNS = {"FULL_NAME": "name", "PHONE_NUMBER": "phone", "EMAIL": "email", "WORK_EMAIL": "email",
           "WORK_PHONE": "phone"}
EXTRA_KEYS = ("gcl_id", "api_version", "asset_group_id", "lead_submit_time", "lead_stage")


def columns(payload: dict[str, Any]) -> dict[str, Any]:
    """user_column_data as {column_id (or the column's name): value}."""
    out: dict[str, Any] = {}
    for col in payload.get("user_column_data") or []:
        if not isinstance(col, dict):
            continue
        key = col.get("column_id") or col.get("column_name")
        if key and "string_value" in col:
            out.setdefault(str(key), col["string_value"])
    return out


def submission(payload: dict[str, Any], entry: Entry | None) -> Submission:
    """Map a Google Ads lead; a `google-ads` entry in sources.yaml may add defaults, fields and consent.

    Submitting the advertiser's lead form is the prospect asking to be contacted: the consent text
    records the form and campaign, unless the entry names a consent question of the form.
    """
    cols = columns(payload)
    data: dict[str, Any] = {}
    for column, lead_field in COLUMNS.items():
        if cols.get(column) and lead_field not in data:
            data[lead_field] = cols[column]
    if "name" not in data:
        data["name"] = " ".join(str(cols[c]).strip() for c in ("FIRST_NAME", "LAST_NAME") if cols.get(c))
    data.update(us_location(cols.get("POSTAL_CODE"), cols.get("REGION")))
    form, campaign = _text(payload.get("form_id")), _text(payload.get("campaign_id"))
    data["consent"] = True
    data["consent_text"] = (f"Submitted Google Ads lead form {form} (campaign {campaign}) asking to be "
                            "contacted")
    if entry is not None:
        mapped, _ = apply(entry, {**payload, **cols})
        data.update(mapped)
    if not data.get("consent") and data.get("email"):
        data["channel"] = "email"  # no consent to call or text: the lead still hears from us
    return Submission(
        source=SOURCE, data=data, external_id=_text(payload.get("lead_id"), 255), campaign_id=campaign,
        adgroup_id=_text(payload.get("adgroup_id")), ad_id=_text(payload.get("creative_id")), form_id=form,
        is_test=payload.get("is_test") is True,
        fields={**cols, **{k: payload[k] for k in EXTRA_KEYS if k in payload}},
    )


def _text(value: Any, size: int = 64) -> str | None:
    """An id as text (Google sends int64s as JSON numbers)."""
    return None if value is None or value == "" else str(value)[:size]
