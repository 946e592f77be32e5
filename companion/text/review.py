"""What a listener would notice is wrong with a finished reply (pure): the yardstick for benchmarks and tests.

Independent of the hygiene that cleans replies while they stream: it reads the
final written reply and what was spoken, the way a person would, and counts:

- script lines: a capitalised name and a colon at a line or sentence start
  ("Mike: ..."), other than ordinary labels and times;
- spoken stage directions: ``*...*``, or ``(...)`` that reads as an action, in what was spoken;
- repeated sentences: a sentence that shares six words in a row (or all of a shorter one of
  at least four) with an earlier sentence of the same reply;
- copied sentences: the same with a sentence of one of her earlier replies;
- wrong self-names: "I'm X" / "my name is X" with X a name that is not hers;
- an empty reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from companion.text.actions import action_emotion
from companion.text.hygiene import is_label
from companion.text.sentences import MIN_COPY, NOT_NAMES, normal_words, sentences_of

__all__ = ["Review", "review_reply", "ngrams", "NGRAM"]

NGRAM = 6  # words in a row that make a sentence a repeat of another

_SCRIPT_LINE = re.compile(r"(?:^|\n|[.!?…][\"”)]?\s)\s*\**\s*([A-Z][\w'’\-]*(?:\s[A-Z][\w'’\-]*){0,2})\s*\**\s*:(?![\d/])")
_STAGE = re.compile(r"\*[^*\n]+\*|\([^()\n]+\)")
_SELF_NAME = re.compile(r"\b(?:I'm|I’m|I am|my name is|my name's|call me)\s+([A-Z][\w'’\-]+)", re.I)


@dataclass
class Review:
    script_lines: list[str] = field(default_factory=list)
    stage_directions: list[str] = field(default_factory=list)  # spoken ones
    repeated: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    wrong_names: list[str] = field(default_factory=list)
    empty: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "script": len(self.script_lines), "stage": len(self.stage_directions), "repeated": len(self.repeated),
            "copied": len(self.copied), "wrong_name": len(self.wrong_names), "empty": int(self.empty),
        }


def ngrams(words: tuple[str, ...], n: int = NGRAM) -> set[tuple[str, ...]]:
    """The runs of ``n`` words in a sentence; a shorter sentence of at least MIN_COPY words is one run."""
    if len(words) < MIN_COPY:
        return set()
    if len(words) <= n:
        return {words}
    return {words[i : i + n] for i in range(len(words) - n + 1)}


def review_reply(reply: str, spoken: Sequence[str], earlier: Iterable[str], char_name: str) -> Review:
    """The defects in one finished reply (``spoken``: the sentences as spoken; ``earlier``: her previous replies)."""
    review = Review(empty=not reply.strip())
    for match in _SCRIPT_LINE.finditer(reply):
        name = match.group(1)
        if not is_label(name):
            review.script_lines.append(name)
    for sentence in spoken:
        # *...* is always an action; (...) when it reads as one ("(smiling)"), not a spoken aside
        review.stage_directions.extend(
            m.group() for m in _STAGE.finditer(sentence) if m.group().startswith("*") or action_emotion(m.group()[1:-1])[0]
        )
    # A sentence is repeated (or copied) when it shares a run of NGRAM words with an earlier one,
    # not only when it is identical: "I'm so glad you're thinking of getting a cat" said again with "really".
    before = {g for text in earlier for words in sentences_of(text) for g in ngrams(words)}
    said: set[tuple[str, ...]] = set()
    for words in sentences_of(" ".join(spoken) if spoken else reply):
        grams = ngrams(words)
        if grams & said:
            review.repeated.append(" ".join(words))
        elif grams & before:
            review.copied.append(" ".join(words))
        said |= grams
    own = set(normal_words(char_name))
    for match in _SELF_NAME.finditer(reply):
        name = match.group(1)
        if name[:1].isupper() and name.lower() not in NOT_NAMES and name.lower() not in own:
            review.wrong_names.append(name)
    return review
