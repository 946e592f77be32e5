"""Answering a question about the person from their own remembered words (pure), for models too small to do it.

Measured on the embedded SmolLM2-135M: however the recalled lines are placed
(before the message, after it, in the system prompt, as a note before or after
the question, only the best line), it answers "What are my cats called?" with
the name it was given in 17-37% of tries (24 tries per placement,
bench/memory_quality.py asks six such questions). A person who asks "what do
I do for a living?" and hears a made-up job stops trusting her memory.

So for a small model, when the message is a direct question about the person
and one of their own remembered sentences clearly answers it (the same
content word, as well as a close embedding), the reply *starts* with that
sentence turned to the second person ("You told me you have two cats named
Salt and Pepper.") and the model continues from there. It is their own words,
so it is never invented; a large model is left to use the recalled lines itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["about_themselves", "second_person", "opening_for", "content_words"]

_QUESTION_START = re.compile(
    r"^\s*(?:do you (?:remember|know|recall)|what|which|where|who|whom|whose|when|how|do|does|did|am|is|are|can you tell me)\b", re.I
)
_SELF = re.compile(r"\b(?:my|i|i'm|i’m|me|mine|am i|do i|did i)\b", re.I)
_STOP = frozenset(
    "a an the and or but so of in on at to for from with by about as is are was were be been am do does did have has had "
    "i me my mine you your yours we our they their he she it its his her this that these those what which where who whom "
    "whose when why how can could would should will shall may might must not no yes there here again remember know "
    "tell recall called named now still just really very some any all one two three".split()
)
# Words people ask with that their own sentences rarely use (stemmed): "for a living" is answered by "I work as".
_ALIASES = {"liv": "work", "job": "work", "career": "work", "profession": "work", "occupation": "work", "employ": "work"}
_SWAPS = {
    "i": "you", "i'm": "you're", "i’m": "you’re", "i've": "you've", "i’ve": "you’ve", "i'll": "you'll", "i’ll": "you’ll",
    "i'd": "you'd", "i’d": "you’d", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
}
_AFTER_I = {"am": "are", "was": "were"}
_WORD = re.compile(r"[A-Za-z'’]+|[^A-Za-z'’]+")


def content_words(text: str) -> set[str]:
    """The words that carry meaning, crudely stemmed ("lives" and "live", "learning" and "learn" meet)."""
    out = set()
    for raw in re.findall(r"[a-z]+", text.lower()):
        if raw in _STOP or len(raw) < 3:
            continue
        for suffix in ("ing", "ies", "es", "ed", "s"):
            if raw.endswith(suffix) and len(raw) - len(suffix) >= 3:
                raw = raw[: -len(suffix)]
                break
        out.add(_ALIASES.get(raw, raw))
    return out


def about_themselves(message: str) -> bool:
    """A direct question about the person: "What is my dog called?", "Do you remember where I work?"."""
    text = message.strip()
    return bool(_QUESTION_START.match(text)) and bool(_SELF.search(text))


def second_person(sentence: str) -> str:
    """Their words as she says them back: "I have two cats" -> "you have two cats", "my sister" -> "your sister"."""
    out: list[str] = []
    last_word = ""
    for token in _WORD.findall(sentence.strip()):
        low = token.lower()
        if low in _SWAPS:
            new = _SWAPS[low]
        elif low in _AFTER_I and last_word == "i":
            new = _AFTER_I[low]
        else:
            new = token
        if token[:1].isalpha():
            last_word = low
        out.append(new)
    text = "".join(out).rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def opening_for(message: str, remembered: Sequence[tuple[str, float]], min_similarity: float = 0.3) -> str | None:
    """The reply's first sentence from their own words, or None.

    ``remembered``: (their sentence, similarity to the message), best first.
    A sentence qualifies when it is close to the question and shares a content word with it ("work" in "What do
    I do for work?" and "I work as a pharmacist"); a question without such a match gets no opening.
    """
    if not about_themselves(message):
        return None
    asked = content_words(message)
    for sentence, similarity in remembered:
        if similarity < min_similarity:
            continue
        first = _first_sentence(sentence)
        if asked & content_words(first):
            return "You told me " + _lower_first(second_person(first))
    return None


# "Hi, my cat is called Pepper." is quoted from "my cat...": "You told me hi, your cat..." reads oddly.
_GREETING = re.compile(r"^(?:hi|hello|hey|hiya|oh|well|so|okay|ok|yes|yeah|um|uh)(?:\s+\w+)?\s*[,!]\s+", re.IGNORECASE)


def _first_sentence(text: str) -> str:
    parts = re.split(r"(?<=[.!?])\s+", _GREETING.sub("", text.strip(), count=1), maxsplit=1)
    return parts[0]


def _lower_first(text: str) -> str:
    """"Your dog..." -> "your dog..." after "You told me"; a name or "I" keeps its capital."""
    first = text.split(" ", 1)[0]
    if first.lower() in ("you", "your", "you're", "you’re", "you've", "you’ve", "you'll", "you’ll", "you'd", "you’d", "yours"):
        return text[:1].lower() + text[1:]
    return text
