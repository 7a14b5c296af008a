"""Text normalization and phrase tables shared by the answer parsers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

_NON_WORD = re.compile(r"[^a-z0-9$]+")
_APOSTROPHES = re.compile(r"[\u2018\u2019\u02bc`´']")


def fold(text: str) -> str:
    """Lowercase, strip accents and apostrophes (so "Don’t", "dont" and "Sí"/"si" compare equal)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _APOSTROPHES.sub("", text)


def tokens(text: str, dedupe: bool = True) -> list[str]:
    """Folded words with punctuation dropped and speech-recognizer stutters ("yes yes") collapsed."""
    words = _NON_WORD.sub(" ", fold(text)).split()
    if not dedupe:
        return words
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def normalize(text: str) -> str:
    """`tokens` joined by single spaces."""
    return " ".join(tokens(text))


class PhraseTable:
    """Finds known phrases in token lists; earliest match wins, then the longest."""

    def __init__(self, phrases: Mapping[str, Any] | None = None) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
        for phrase, value in (phrases or {}).items():
            self.add(phrase, value)

    def add(self, phrase: str, value: Any) -> None:
        """Register `phrase` (normalized here) as meaning `value`."""
        key = tuple(tokens(phrase))
        if key:
            bucket = self._by_first.setdefault(key[0], [])
            bucket.append((key, value))
            bucket.sort(key=lambda item: -len(item[0]))

    def matches(self, words: list[str]) -> Iterable[tuple[int, int, Any]]:
        """Every (start, length, value) match, in order of start then length (longest first)."""
        for start, word in enumerate(words):
            for key, value in self._by_first.get(word, ()):
                if tuple(words[start : start + len(key)]) == key:
                    yield start, len(key), value

    def first(self, words: list[str]) -> tuple[int, int, Any] | None:
        """The earliest, longest match."""
        return next(iter(self.matches(words)), None)


def table(groups: Mapping[Any, str]) -> PhraseTable:
    """Build a PhraseTable from {value: "phrase | phrase | ..."}."""
    result = PhraseTable()
    for value, phrases in groups.items():
        for phrase in phrases.split("|"):
            result.add(phrase.strip(), value)
    return result


# "I don't know" in any answer type: an answer, not a failure to understand.
UNKNOWN_PHRASES = (
    "maybe | not sure | im not sure | unsure | not certain | i dont know | dont know | idk | dunno | "
    "no idea | i have no idea | depends | it depends | that depends | hard to say | cant say | "
    "perhaps | possibly | kind of | sort of | somewhat | not sure yet | i dont know yet | havent decided | "
    "i havent decided | "
    "havent figured that out | no clue | who knows | we will see | well see | you tell me | youd tell me | "
    "hoping you would tell me | what do you think | todavia no se | no se | "
    "tal vez | quizas | quiza | a lo mejor | depende | ni idea | no estoy seguro | no estoy segura"
)

YES_NO = table(
    {
        "yes": "yes | yeah | yea | yep | yup | ya | yah | yas | yess | yes please | yes maam | yes sir | "
        "sure | sure thing | absolutely | definitely | of course | certainly | correct | right | "
        "thats right | thats correct | exactly | affirmative | indeed | ok | okay | alright | all right | "
        "i do | we do | i am | we are | i think so | i believe so | i guess so | i guess | probably | "
        "uh huh | mhm | mm hmm | mmhmm | you bet | totally | for sure | go ahead | sounds good | "
        "why not | true | i would | we would | i will | interested | very interested | positive | "
        "i am interested | please do | no yeah | yes yes | si | claro | claro que si | por supuesto | "
        "correcto | asi es | exacto | dale | bueno | vale | cierto | si por favor",
        "no": "no | nope | nah | naw | no thanks | no thank you | not really | not at all | negative | "
        "never | i dont | we dont | i am not | im not | were not | we are not | i dont think so | "
        "i think not | not interested | no way | not now | not right now | not yet | nothing | "
        "incorrect | wrong | false | yeah no | no no | no sir | no maam | i wont | i would not | "
        "absolutely not | definitely not | of course not | certainly not | para nada | no gracias | "
        "todavia no | tampoco | nunca | jamas | not anymore | no longer | we already found someone | "
        "already found someone | already have someone | ya no",
        "unknown": UNKNOWN_PHRASES,
    }
)

# Carrier-standard keywords (CTIA) that opt out when they are the whole message.
OPT_OUT_KEYWORDS = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "opt out",
        "remove",
        "remove me",
        "baja",
        "alto",
    }
)
# Phrases that opt out wherever they appear in a longer message.
OPT_OUT_PHRASES = table(
    {
        "opt_out": "stop calling | stop calling me | stop texting | stop texting me | stop messaging me | "
        "stop contacting me | stop sending me | stop sending messages | stop sending texts | "
        "stop the texts | "
        "stop the calls | quit calling | quit calling me | quit texting | dont call | dont call me | "
        "do not call | do not call me | dont text me | do not text | do not contact me | "
        "dont contact me | take me off | take me off your list | remove me | remove my number | "
        "put me on your do not call list | unsubscribe | stopall | optout | opt out | opt me out | "
        "leave me alone | lose my number | no more calls | no more texts | no more messages | "
        "wrong number | no me llames | no me llamen | dejen de llamar | deja de llamar | "
        "no me escriban | darme de baja | dame de baja | quitenme de la lista | no llamar"
    }
)
# Polite filler around a bare keyword ("STOP please", "please stop!!").
OPT_OUT_FILLER = frozenset({"please", "pls", "now", "it", "just", "por", "favor", "ok", "okay"})

# Words that flip the meaning of the phrase right after them ("not the owner").
NEGATIONS = frozenset({"not", "no", "dont", "isnt", "arent", "never", "nor", "neither", "without"})
