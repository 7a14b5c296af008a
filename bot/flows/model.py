"""The validated, immutable shape of a flow; built by the loader, read by the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from bot.flows.templates import Text

DECIDE = "decide"  # target meaning "evaluate outcomes in order"
OUTCOME_PREFIX = "outcome:"
UNKNOWN = "unknown"  # the normalized "I don't know" answer
OPT_OUT_ID = "opt_out"
DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES = ("en", "es")
DEFAULT_OPT_OUT_DIGIT = "9"  # "press 9 to be removed" is the common IVR convention in the US
DEFAULT_MAX_RETRIES = 2
DEFAULT_VOICE = "Polly.Joanna"


class _NotUnderstood:
    """The single "no match" marker: the person said something we could not map to an answer."""

    def __repr__(self) -> str:
        return "NOT_UNDERSTOOD"

    def __bool__(self) -> bool:
        return False


NOT_UNDERSTOOD: Any = _NotUnderstood()  # parsers return it when nothing fits


class AnswerType(str, Enum):
    """What kind of answer a step expects; each has a parser in bot.flows.answers."""

    YES_NO = "yes_no"
    CHOICE = "choice"
    NUMBER = "number"
    MONEY = "money"
    TIMEFRAME = "timeframe"
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"


class ActionKind(str, Enum):
    """What leadbot does with a finished conversation."""

    WARM_TRANSFER = "warm_transfer"
    HANDOFF_SMS = "handoff_sms"
    NURTURE = "nurture"  # written `nurture:<sequence>`
    CLOSE = "close"
    OPT_OUT = "opt_out"


class Channel(str, Enum):
    """Where the conversation happens; both run the same flow."""

    VOICE = "voice"
    SMS = "sms"

    @classmethod
    def parse(cls, value: str) -> Channel:
        """Accept the lead table's `call` as voice and `text` as sms."""
        aliases = {"call": cls.VOICE, "phone": cls.VOICE, "text": cls.SMS}
        return aliases.get(value.lower()) or cls(value.lower())


# Single-key answers that a keypad can give on the phone.
KEYPAD_TYPES = (AnswerType.YES_NO, AnswerType.CHOICE)
YES_NO_DIGITS = {"1": "yes", "2": "no"}


@dataclass(frozen=True)
class Choice:
    """One option of a choice step."""

    id: str
    label: Text | None
    labels: tuple[str, ...]  # every language's label source, for matching and hints
    synonyms: tuple[str, ...]
    digit: str | None


@dataclass(frozen=True)
class Step:
    """One question."""

    id: str
    prompt: Text
    type: AnswerType
    on: dict[str, str]  # answer key (yes/no/choice id/unknown/default) -> target
    reprompt: Text | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    on_fail: str = DECIDE
    choices: tuple[Choice, ...] = ()
    hints: tuple[str, ...] = ()
    line: int = 0

    def target_for(self, key: str) -> str | None:
        """Where an answer keyed `key` goes, falling back to `default`."""
        return self.on.get(key) or self.on.get("default")

    def choice(self, choice_id: str) -> Choice | None:
        """The option with that id."""
        return next((c for c in self.choices if c.id == choice_id), None)


@dataclass(frozen=True)
class OutcomeDef:
    """One way a conversation can end."""

    id: str
    action: str  # warm_transfer | handoff_sms | nurture:<sequence> | close | opt_out
    say: Text | None
    when: Condition | None = None
    line: int = 0

    @property
    def kind(self) -> ActionKind:
        """The action without its nurture sequence."""
        return ActionKind(self.action.split(":", 1)[0])


@dataclass(frozen=True)
class OptOut:
    """How a flow honours "stop": a keypad digit, extra words and a goodbye line."""

    digit: str | None
    say: Text
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flow:
    """A loaded, valid flow; `version` is the sha256 of its source bytes."""

    id: str
    title: str
    language: str
    languages: tuple[str, ...]
    voice: dict[str, str]
    greeting: Text | None
    steps: dict[str, Step]
    outcomes: dict[str, OutcomeDef]
    opt_out: OptOut
    version: str = ""
    path: str = ""
    source: str = field(default="", repr=False)
    voicemail: Text | None = None  # left on an answering machine; may use {{ callback_number }}

    @property
    def first_step(self) -> str:
        """The step every conversation starts at."""
        return next(iter(self.steps))

    def voice_for(self, language: str) -> str:
        """The TTS voice for a language, else the flow language's."""
        return self.voice.get(language) or self.voice.get(self.language) or DEFAULT_VOICE


@dataclass(frozen=True)
class Leaf:
    """`{answer: step, op: arg}`."""

    answer: str
    op: str
    arg: Any

    def describe(self) -> str:
        """Readable form for outcome reasons."""
        return f"{self.answer} {self.op} {self.arg}"


@dataclass(frozen=True)
class Group:
    """`all: [...]`, `any: [...]` or `not: {...}` (one item)."""

    kind: str
    items: tuple[Condition, ...]

    def describe(self) -> str:
        """Readable form for outcome reasons."""
        inner = ", ".join(item.describe() for item in self.items)
        return f"not ({inner})" if self.kind == "not" else f"{self.kind}({inner})"


Condition = Leaf | Group
