"""Rasa SDK actions for the prequal form, reusing leadbot's flow parsers and outcome rules.

Run with `python -m rasa_sdk --actions bot.channels.rasa_actions --port 5055`. The Rasa domain needs the
form `prequal_form` with slots service_need, budget, timing, authority (type any, from_text), plus
optional `opted_out` (bool), `lead_id` and `first_name` (text) slots.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import requests
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.flows import engine
from bot.flows.answers import NOT_UNDERSTOOD, is_opt_out, parse_for_step
from bot.flows.model import Flow
from bot.flows.registry import FlowRegistry

log = logging.getLogger(__name__)

# Rasa slot -> step of the default flow whose parser and prompts it shares.
SLOT_STEPS = {"service_need": "need", "budget": "budget", "timing": "timing", "authority": "authority"}
POST_ATTEMPTS = 3


@dataclass(frozen=True)
class RasaSettings:
    """What the action server needs from the environment, read once."""

    leadbot_url: str
    api_key: str
    flows_dir: Path
    flow_id: str

    @classmethod
    def from_env(cls) -> RasaSettings:
        """Read LEADBOT_URL, LEADBOT_API_KEY, FLOWS_DIR and RASA_FLOW."""
        root = Path(__file__).resolve().parent.parent
        if not os.environ.get("LEADBOT_API_KEY"):
            log.warning("LEADBOT_API_KEY is not set: leadbot will refuse the outcomes this server posts")
        return cls(
            leadbot_url=os.environ.get("LEADBOT_URL", "http://127.0.0.1:5000").rstrip("/"),
            api_key=os.environ.get("LEADBOT_API_KEY", ""),
            flows_dir=Path(os.environ.get("FLOWS_DIR") or root / "ivr_flows"),
            flow_id=os.environ.get("RASA_FLOW", "prequal"),
        )


@cache
def settings() -> RasaSettings:
    """The process-wide settings."""
    return RasaSettings.from_env()


@cache
def registry() -> FlowRegistry:
    """One registry per process, so flow edits are picked up without re-validating per message."""
    return FlowRegistry(settings().flows_dir)


def flow() -> Flow:
    """The current version of the flow the form follows."""
    return registry().current(settings().flow_id)


def _lead(tracker: Tracker) -> dict[str, Any]:
    return {"first_name": tracker.get_slot("first_name"), "language": tracker.get_slot("language")}


def _answers(tracker: Tracker) -> dict[str, Any]:
    values = {step: tracker.get_slot(slot) for slot, step in SLOT_STEPS.items()}
    return {step: value for step, value in values.items() if value is not None}


class ValidatePrequalForm(FormValidationAction):
    """Validates each prequal slot with the same parser the voice and SMS channels use."""

    def name(self) -> str:
        """The Rasa action name."""
        return "validate_prequal_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        """Stop asking after an opt-out or a "no, I don't need this"."""
        if tracker.get_slot("opted_out") or tracker.get_slot("service_need") == "no":
            return []
        return domain_slots

    def _validate(
        self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        current = flow()
        if value is not None and not isinstance(value, str):
            return {slot: value}  # already normalized (e.g. restored from an earlier turn)
        text = value or tracker.latest_message.get("text") or ""
        if is_opt_out(text, "", None, current.opt_out.words):
            goodbye = engine.opt_out(current, _answers(tracker), _lead(tracker))
            dispatcher.utter_message(text=goodbye.say)
            return {slot: None, "opted_out": True, "requested_slot": None}
        step = current.steps[SLOT_STEPS[slot]]
        parsed = parse_for_step(step, text, language=tracker.get_slot("language") or current.language)
        if parsed is NOT_UNDERSTOOD:
            prompt = engine.prompt_for(
                current, step.id, _lead(tracker), answers=_answers(tracker), reprompt=True
            )
            dispatcher.utter_message(text=prompt.text)
            return {slot: None}
        return {slot: parsed}

    def validate_service_need(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """yes / no / unknown."""
        return self._validate("service_need", slot_value, dispatcher, tracker)

    def validate_budget(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """{"min", "max", "currency"} or unknown."""
        return self._validate("budget", slot_value, dispatcher, tracker)

    def validate_timing(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """{"kind", "days_from_now", "start", "end"} or unknown."""
        return self._validate("timing", slot_value, dispatcher, tracker)

    def validate_authority(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """me / shared / someone_else / unknown."""
        return self._validate("authority", slot_value, dispatcher, tracker)


class AskSlot(Action, ABC):
    """`action_ask_<slot>`: the form asks with the flow's own prompt text."""

    @property
    @abstractmethod
    def slot(self) -> str:
        """The slot this action asks for."""

    def name(self) -> str:
        """The Rasa action name."""
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Send the prompt of the matching step."""
        prompt = engine.prompt_for(flow(), SLOT_STEPS[self.slot], _lead(tracker), answers=_answers(tracker))
        dispatcher.utter_message(text=prompt.text)
        return []


class AskServiceNeed(AskSlot):
    """Asks the need question."""

    slot = "service_need"


class AskBudget(AskSlot):
    """Asks the budget question."""

    slot = "budget"


class AskTiming(AskSlot):
    """Asks the timing question."""

    slot = "timing"


class AskAuthority(AskSlot):
    """Asks the decision-maker question."""

    slot = "authority"


def post_outcome(lead_id: str, payload: dict[str, Any], config: RasaSettings) -> bool:
    """POST the answers to leadbot, retrying briefly; False (and logged with the payload) on failure."""
    url = f"{config.leadbot_url}/leads/{lead_id}/outcome"
    headers = {"Authorization": f"Bearer {config.api_key}"}
    for attempt in range(1, POST_ATTEMPTS + 1):
        try:
            reply = requests.post(url, json=payload, headers=headers, timeout=5)
            if reply.status_code < 500:
                if reply.status_code >= 400:
                    log.error(
                        "leadbot refused outcome for lead %s: %s %s",
                        lead_id,
                        reply.status_code,
                        reply.text[:200],
                    )
                return reply.ok
        except requests.RequestException as exc:
            log.warning("posting outcome for lead %s failed (attempt %d): %s", lead_id, attempt, exc)
        time.sleep(0.2 * attempt)
    # Logged with the full payload so the lead can be replayed by hand: never silently lost.
    log.error("could not deliver outcome for lead %s to %s; payload=%r", lead_id, url, payload)
    return False


class ActionSubmitPrequal(Action):
    """Computes the outcome with the flow's rules and hands it to leadbot."""

    def name(self) -> str:
        """The Rasa action name."""
        return "action_submit_prequal"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        """Decide, POST to leadbot, say the closing line."""
        current = flow()
        answers = _answers(tracker)
        if tracker.get_slot("opted_out"):
            outcome = engine.opt_out(current, answers, _lead(tracker), reason="opt-out in Rasa")
        else:
            outcome = engine.decide(current, answers, _lead(tracker), reason="rasa prequal form")
        lead_id = tracker.get_slot("lead_id") or tracker.sender_id
        payload = {"answers": answers, "source": "rasa", "outcome": outcome.id}
        delivered = await asyncio.to_thread(post_outcome, str(lead_id), payload, settings())
        dispatcher.utter_message(text=outcome.say)
        return [SlotSet("prequal_outcome", outcome.id), SlotSet("leadbot_notified", delivered)]
