"""Sentence-level reply hygiene (pure): copied sentences and a wrong name for herself, caught while streaming.

A small model copies: the same sentence twice in one reply (a loop that goes on), or a sentence from one of
its last replies (every reply opening "I'm so glad you asked!"). And it takes the person's name for its own
("I'm Robin", said to Robin). ``SentenceGuard`` takes the text ``ReplyHygiene`` lets through, word by word, and:

* holds a sentence only while its first words are those of a sentence already said (normalised: case and
  punctuation ignored); once six words match (or all of a shorter one of at least four), it is a copy: a copy
  from this reply ends the reply (a loop), a copy from an earlier reply is left out;
* holds the clause being written until it ends; once it holds six words in a row said before (in this reply or
  an earlier one), that clause and the rest of the sentence are left out;
* holds the words that may start "I'm X" / "I am X" / "my name is X" / "call me X" until X is known; with X a
  capitalised word that is not her name, the rest of that sentence is left out.

Ordinary sentences pass as soon as they differ from every earlier one, usually within a word or two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["SentenceGuard", "normal_words", "sentences_of", "take_words"]

COPY_WORDS = 6  # this many leading words in common make a copy
PHRASE_WORDS = 6  # this many words in a row anywhere in a sentence, said before, make the rest of it a copy
MAX_HOLD = 16  # words of a clause held back at most while it may still turn out to be a copy
MIN_COPY = 4  # a shorter sentence repeated whole ("Oh, I see.") is not worth leaving out
CLAIMS = (("i'm",), ("i’m",), ("i", "am"), ("my", "name", "is"), ("my", "name's"), ("call", "me"), ("i'm", "called"))
# Capitalised words that follow "I'm" without being a name.
NOT_NAMES = frozenset(
    "sorry not so just also here very really glad happy sure fine ok okay good great afraid excited back home ready "
    "american british english canadian australian irish scottish welsh french german spanish italian dutch swiss "
    "japanese chinese korean indian mexican brazilian russian polish swedish norwegian danish finnish european "
    "asian african christian catholic muslim jewish buddhist hindu vegan vegetarian ai".split()
)
_WORD = re.compile(r"\S+\s+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]*]*$")
_SPLIT = re.compile(r"(?<=[.!?…])[\"'”’)\]*]*\s+")


def take_words(buffer: str) -> tuple[list[str], str]:
    """The whole words at the start of ``buffer`` (each with the space after it), and what is left: a word being written."""
    words, pos = [], 0
    for match in _WORD.finditer(buffer):
        words.append(match.group())
        pos = match.end()
    return words, buffer[pos:]


def normal_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` as compared: lower case, without punctuation."""
    return tuple(w for w in (re.sub(r"[^\w'’]+", "", raw.lower()).strip("'’") for raw in text.split()) if w)


def sentences_of(text: str) -> list[tuple[str, ...]]:
    """The normalised sentences of a reply."""
    return [words for words in (normal_words(s) for s in _SPLIT.split(text)) if words]


class SentenceGuard:
    """``feed`` text, take what it returns; ``stopped`` when a sentence of this reply came again (a loop)."""

    def __init__(self, own_names: Iterable[str] = (), recent_replies: Iterable[str] = (), message: str = "") -> None:
        self.own = {w for name in own_names for w in normal_words(name)}
        # the person's message counts as said before: an echo of their own words is not an answer
        self.earlier = [s for reply in [*recent_replies, message] for s in sentences_of(reply) if len(s) >= MIN_COPY]
        self._phrases: set[tuple[str, ...]] = set()  # runs of PHRASE_WORDS words said before (earlier replies, this one)
        for sentence in self.earlier:
            self._learn(sentence)
        self.said: list[tuple[str, ...]] = []  # this reply's sentences
        self.stopped = False
        self.reason: str | None = None
        self.left_out: list[str] = []  # sentences (or their ends) not said, for logs and tests
        self._partial = ""
        self._words: list[str] = []  # raw words (with their spaces) of the sentence being written
        self._norms: list[str] = []
        self._released = 0  # words of this sentence already passed on
        self._drop_from: int | None = None  # the sentence is left out from this word on
        self._any_out = False
        self._first_copy = ""  # said anyway if everything else was left out: better a copy than silence

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        words, self._partial = take_words(self._partial + text)
        out: list[str] = []
        for word in words:
            out.append(self._word(word))
            if self.stopped:
                break
        return self._mark("".join(out))

    def finish(self) -> str:
        if self.stopped:
            return ""
        out = self._word(self._partial) if self._partial.strip() else self._partial
        self._partial = ""
        if not self.stopped and self._words:
            out += self._end_sentence()
        if not self._any_out and self._first_copy and not _SENTENCE_END.search((out or "").strip()):
            out = self._first_copy  # everything else was a copy: better one copied sentence than silence or a fragment
        return self._mark(out)

    # -- internals ------------------------------------------------------------------

    def _mark(self, out: str) -> str:
        if out.strip():
            self._any_out = True
        return out

    def _word(self, raw: str) -> str:
        norm = normal_words(raw)
        self._words.append(raw)
        self._norms.append(norm[0] if norm else "")
        hold = len(self._words)
        claim = self._claims()
        if 0 < claim < len(self._words) and self._words[claim - 1].rstrip().endswith(","):
            claim -= 1  # keep the comma before a claim too: it may have to become a full stop
        hold = min(hold, claim)
        if raw.rstrip().endswith(","):
            hold = min(hold, len(self._words) - 1)  # a claim may follow: "Hello there, I'm ..."
        copy = self._copy_state()
        if copy == "loop":
            self.stopped, self.reason = True, "repeated sentence"
            self.left_out.append("".join(self._words).strip())
            return ""
        if copy == "copy" and self._drop_from is None:
            self._drop_from = 0
            self.reason = self.reason or "copied sentence"
        elif copy == "maybe":
            hold = 0
        hold = min(hold, self._phrase_state())
        if _SENTENCE_END.search(raw.strip()):
            return self._end_sentence()
        return self._release(hold)

    def _release(self, upto: int, final: bool = False) -> str:
        stop = upto if self._drop_from is None else min(upto, self._drop_from)
        if not final and self._drop_from and stop == self._drop_from and self._words[stop - 1].rstrip().endswith(","):
            stop -= 1  # its comma becomes a full stop at the sentence's end
        if stop <= self._released:
            return ""
        out = "".join(self._words[self._released : stop])
        self._released = stop
        return out

    def _end_sentence(self) -> str:
        out = self._release(len(self._words), final=True)
        if self._drop_from is not None:
            dropped = "".join(self._words[self._drop_from :])
            self.left_out.append(dropped.strip())
            if self._drop_from == 0 and not self._first_copy:
                self._first_copy = dropped
            if out.strip() and not out.rstrip().endswith((".", "!", "?", "…")):
                out = out.rstrip().rstrip(",;:—–-") + ". "  # "Hello there, [I'm Robin]" -> "Hello there. "
            elif not out.strip() and self._released and not "".join(self._words[: self._released]).rstrip().endswith(
                (".", "!", "?", "…", ",", ";", ":")
            ):
                out = ". "  # words already passed on, the rest left out: end it there
        words = tuple(w for w in self._norms if w)
        if words and self._drop_from != 0:
            self.said.append(words)
            self._learn(tuple(w for w in self._norms[: self._drop_from] if w) if self._drop_from else words)
        self._words, self._norms, self._released, self._drop_from = [], [], 0, None
        return out

    def _copy_state(self) -> str:
        """"loop" (this reply said it), "copy" (an earlier reply did), "maybe" (it still may be), or ""."""
        words = [w for w in self._norms if w]
        if not words or self._drop_from == 0:
            return ""
        verdict = ""
        for source, kind in ((self.said, "loop"), (self.earlier, "copy")):
            for sentence in source:
                if len(sentence) < MIN_COPY or tuple(words) != sentence[: len(words)]:
                    continue
                if len(words) >= min(COPY_WORDS, len(sentence)):
                    return kind
                verdict = "maybe"
        return verdict

    def _learn(self, words: tuple[str, ...]) -> None:
        self._phrases.update(words[i : i + PHRASE_WORDS] for i in range(len(words) - PHRASE_WORDS + 1))

    def _phrase_state(self) -> int:
        """Where to hold from: the clause being written; once it holds a run said before, the clause is left out.

        Six words in a row from an earlier sentence (this reply's or an earlier reply's), anywhere in this one,
        are a copy even when the sentence began differently ("Honestly, I'm really glad you're thinking of
        getting a cat"): that clause and the rest of the sentence are left out. The clause being written is
        held until it ends (a comma or the sentence's end), which costs nothing: speech starts at a clause.
        """
        if self._drop_from is not None or not self._phrases:
            return len(self._words)
        at = [i for i, w in enumerate(self._norms) if w]
        tail = tuple(self._norms[i] for i in at[-PHRASE_WORDS:])
        if len(tail) == PHRASE_WORDS and tail in self._phrases:
            start = self._clause_start(at[-PHRASE_WORDS])
            if self._released == 0 and sum(1 for w in self._norms[:start] if w) < 2:
                start = 0  # "Honestly, [copy]": a lone word left of a sentence is not worth saying
            elif start < self._released:  # a long clause was partly passed on: cut where the copy starts
                start = max(self._released, at[-PHRASE_WORDS])
            self._drop_from = start
            self.reason = self.reason or "copied phrase"
            return self._drop_from
        last = len(self._words) - 1
        if self._words[last].rstrip().endswith((",", ";", "—", "–")):
            return len(self._words)  # the clause is complete and clean
        start = self._clause_start(last)
        start = start - 1 if start > 0 else 0  # the comma before it too: it may have to become a full stop
        return max(start, len(self._words) - MAX_HOLD)  # a clause that never ends is not held back for good

    def _clause_start(self, index: int) -> int:
        """The first word of the clause holding word ``index`` (after the last comma before it), 0 without one."""
        for i in range(index - 1, -1, -1):
            if self._words[i].rstrip().endswith((",", ";", "—", "–")):
                return i + 1
        return 0

    def _claims(self) -> int:
        """Where to hold from for a claim still forming; a finished wrong claim starts leaving the sentence out."""
        n = len(self._norms)
        for start in range(max(0, n - 4), n):
            tail = self._norms[start:]
            for claim in CLAIMS:
                if len(tail) <= len(claim) and tuple(tail) == claim[: len(tail)]:
                    return start  # may become a claim: wait for the name
                if len(tail) == len(claim) + 1 and tuple(tail[:-1]) == claim:
                    raw = self._words[-1].strip().strip(".,!?;:…\"'”’)")
                    if self._wrong_name(raw) and self._drop_from is None:
                        self._drop_from = start
                        self.reason = self.reason or "wrong name for herself"
                    return n if self._drop_from is None else start
        return n

    def _wrong_name(self, raw: str) -> bool:
        if not raw or not raw[0].isupper() or raw.endswith(("'s", "’s")):
            return False
        word = raw.lower()
        return word not in self.own and word not in NOT_NAMES and not word.isdigit()
