"""Moderation of what comes in from chat and what goes out to speech and chat, per sentence.

Matching works on a normalised form of the text: Unicode compatibility
forms, look-alike letters (Cyrillic/Greek confusables), leetspeak digits and
symbols, and spacing or punctuation inside words ("b a d", "b.a.d", "baaad")
are all folded away, so "Ⓑ4 d" matches "bad".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class Incoming(Protocol):
    """A message from an audience, as moderation sees it (stream chat's ChatMessage is one)."""

    @property
    def user_id(self) -> str: ...
    @property
    def user_name(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def kind(self) -> str: ...  # "chat", or an event such as a raid or a gift

__all__ = ["normalise", "Moderator", "InputVerdict", "Incoming"]

_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ӏ": "l", "к": "k", "м": "m", "т": "t", "в": "b", "н": "h",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|net|org|gg|tv|io|ly|co|xyz|ru|me)(?:/\S*)?\b", re.I)


def normalise(text: str) -> str:
    """Letters only, lower case, look-alikes and leetspeak folded, repeats collapsed: what matching sees."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(_CONFUSABLES).translate(_LEET)
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    letters = "".join(ch for ch in folded if ch.isalpha())
    return re.sub(r"(.)\1+", r"\1", letters)


_SUFFIXES = ("", "s", "es", "ed", "er", "ers", "ing", "y")


def _tokens(text: str) -> list[str]:
    """Normalised words, with runs of single letters joined ("b a d" -> "bad") to defeat spacing."""
    words = [normalise(w) for w in re.split(r"\s+", text)]
    words = [w for w in words if w]
    out: list[str] = []
    run = ""
    for word in words:
        if len(word) == 1:
            run += word
            continue
        if run:
            out.append(run)
            run = ""
        out.append(word)
    if run:
        out.append(run)
    return out


def _windows(tokens: list[str], term: str) -> list[str]:
    """Single tokens and joins of neighbours (for terms written as two words, or split on purpose)."""
    joined = [a + b for a, b in zip(tokens, tokens[1:])]
    return tokens + joined


def _matches(term: str, word: str) -> bool:
    # whole words only, so "class" never matches "ass" (the Scunthorpe problem)
    return any(word == term + suffix for suffix in _SUFFIXES) or (len(term) >= 5 and term in word)


@dataclass(frozen=True, slots=True)
class InputVerdict:
    allowed: bool
    text: str  # cleaned text (links removed) when allowed
    reason: str = ""


class Moderator:
    def __init__(
        self,
        blocked_terms: list[str] = (),  # type: ignore[assignment]
        *,
        blocked_users: list[str] = (),  # type: ignore[assignment]
        replacement: str = "Let's talk about something else.",
        classifier: Callable[[str], bool] | None = None,
        strip_links: bool = True,
    ) -> None:
        self.terms = [t for t in (normalise(term) for term in blocked_terms) if t]
        self.blocked_users = {u.lower() for u in blocked_users}
        self.replacement = replacement
        self.classifier = classifier  # optional: True means "block"
        self.strip_links = strip_links

    def blocked(self, text: str) -> bool:
        tokens = _tokens(text)
        for term in self.terms:
            if any(_matches(term, candidate) for candidate in _windows(tokens, term)):
                return True
        return bool(self.classifier is not None and self.classifier(text))

    def check_input(self, message: Incoming) -> InputVerdict:
        if message.user_id.lower() in self.blocked_users or message.user_name.lower() in self.blocked_users:
            return InputVerdict(False, "", "blocked user")
        text = _URL.sub("", message.text).strip() if self.strip_links else message.text
        if self.blocked(text):
            return InputVerdict(False, "", "blocked term")
        if not text and message.kind == "chat":
            return InputVerdict(False, "", "empty after removing links")
        return InputVerdict(True, text)

    def check_output(self, sentence: str) -> str:
        """The sentence to say and post: itself, or the replacement line."""
        return self.replacement if sentence.strip() and self.blocked(sentence) else sentence
