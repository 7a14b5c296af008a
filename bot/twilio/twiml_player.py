"""Plays Twilio's side of a call: parses TwiML and posts signed webhooks (simulator and test emulator)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from bot.twilio.signature import sign

# post(url, params, headers) -> (status, body text)
Poster = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str]]


def parse_twiml(xml: str) -> list[dict[str, Any]]:
    """TwiML as a list of verbs: {'verb': 'Say', 'text': ..., **attributes, 'children': [...]}."""
    root = ET.fromstring(xml)
    return [_verb(el) for el in root]


def _verb(el: ET.Element) -> dict[str, Any]:
    """One element with its attributes, text and nested verbs."""
    out: dict[str, Any] = {"verb": el.tag, **el.attrib, "text": (el.text or "").strip()}
    kids = [_verb(k) for k in el]
    if kids:
        out["children"] = kids
    return out


def spoken(verbs: list[dict[str, Any]]) -> list[str]:
    """Everything the caller would hear, in order (Say texts, including inside Gather)."""
    lines: list[str] = []
    for v in verbs:
        if v["verb"] == "Say" and v["text"]:
            lines.append(v["text"])
        lines.extend(spoken(v.get("children", [])))
    return lines


def last(verbs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The last verb of a kind (where input goes next), searching nested verbs too."""
    found = None
    for v in verbs:
        if v["verb"] == name:
            found = v
        inner = last(v.get("children", []), name)
        found = inner or found
    return found


class CallLeg:
    """One simulated call: follows TwiML, Redirects and Gathers by posting signed webhooks."""

    def __init__(self, post: Poster, token: str, params: dict[str, str]) -> None:
        self.post, self.token, self.params = post, token, dict(params)
        self.verbs: list[dict[str, Any]] = []
        self.heard: list[str] = []
        self.ended = False

    def request(self, url: str, extra: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """POST the call's parameters (plus extra) to url, signed; follow Redirects."""
        for _ in range(10):
            params = {**self.params, **(extra or {})}
            status, body = self.post(url, params, {"X-Twilio-Signature": sign(self.token, url, params)})
            if status != 200:
                raise RuntimeError(f"webhook {url} answered {status}: {body[:200]}")
            self.verbs = parse_twiml(body)
            self.heard.extend(spoken(self.verbs))
            redirect = self.verbs[-1] if self.verbs and self.verbs[-1]["verb"] == "Redirect" else None
            if redirect is None:
                break
            url, extra = redirect["text"], None
        self.ended = not any(v["verb"] in ("Gather", "Dial") for v in self.verbs)
        return self.verbs

    def notify(self, url: str, extra: dict[str, str]) -> int:
        """POST a signed callback that expects no TwiML (status, async AMD); returns the HTTP status."""
        params = {**self.params, **extra}
        status, body = self.post(url, params, {"X-Twilio-Signature": sign(self.token, url, params)})
        if status >= 300:
            raise RuntimeError(f"callback {url} answered {status}: {body[:200]}")
        return status

    def amd(self, url: str, answered_by: str) -> int:
        """Twilio's asynchronous answering-machine verdict (AsyncAmdStatusCallback)."""
        return self.notify(url, {"AnsweredBy": answered_by, "MachineDetectionDuration": "4200"})

    def answer(self, url: str, answered_by: str = "human") -> list[dict[str, Any]]:
        """The callee picks up: Twilio fetches the call's Url."""
        self.params["CallStatus"] = "in-progress"
        return self.request(url, {"AnsweredBy": answered_by} if answered_by else None)

    def reply(self, digits: str | None = None, speech: str | None = None) -> list[dict[str, Any]]:
        """Answer the current Gather with keys or speech (both None = silence)."""
        gather = last(self.verbs, "Gather")
        if gather is None:
            raise RuntimeError("no Gather to answer; the call has moved on")
        extra: dict[str, str] = {}
        if digits:
            extra["Digits"] = digits
        if speech:
            extra.update(SpeechResult=speech, Confidence="0.92")
        return self.request(gather["action"], extra)
