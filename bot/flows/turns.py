"""What crosses the engine boundary each turn: the Event in, Prompts and an Outcome out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.flows.model import ActionKind


class EventKind(str, Enum):
    """What the person did."""

    ANSWER = "answer"
    SILENCE = "silence"


class PromptKind(str, Enum):
    """Why a prompt is said."""

    GREETING = "greeting"
    QUESTION = "question"
    REPROMPT = "reprompt"


@dataclass(frozen=True)
class Event:
    """One turn from the person: speech/SMS text and/or keypad digits, or silence."""

    kind: EventKind = EventKind.ANSWER
    text: str = ""
    digits: str = ""

    @classmethod
    def answer(cls, text: str = "", digits: str = "") -> Event:
        """An answer; empty text and digits count as silence."""
        return cls(EventKind.ANSWER, text or "", digits or "")

    @classmethod
    def silence(cls) -> Event:
        """No input before the timeout."""
        return cls(EventKind.SILENCE)


@dataclass(frozen=True)
class Prompt:
    """One thing to say or send, and what input (if any) it waits for."""

    text: str
    kind: PromptKind
    language: str
    voice: str
    step: str | None = None  # set when this prompt waits for an answer
    answer_type: str | None = None
    hints: tuple[str, ...] = ()  # speech recognition hints
    num_digits: int | None = None  # 1 when a single keypress answers
    keys: tuple[tuple[str, str], ...] = ()  # (key, label) pairs the keypad accepts

    @property
    def expects_input(self) -> bool:
        """True when the channel should wait for an answer after this prompt."""
        return self.step is not None


@dataclass(frozen=True)
class Outcome:
    """How the conversation ended and what leadbot should do next."""

    id: str
    action: str  # warm_transfer | handoff_sms | nurture:<sequence> | close | opt_out
    say: str
    answers: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    language: str = "en"
    voice: str = ""

    @property
    def kind(self) -> ActionKind:
        """The action without its nurture sequence."""
        return ActionKind(self.action.split(":", 1)[0])

    @property
    def sequence(self) -> str | None:
        """The nurture sequence of `nurture:<sequence>`, else None."""
        return self.action.split(":", 1)[1] if ":" in self.action else None
