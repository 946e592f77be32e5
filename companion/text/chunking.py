"""Pure text helpers for a streamed reply: sentence chunking, emotion tags, speech cleanup.

Everything here is free of I/O so it can be tested directly and run per token
without touching the event loop. The chunker exists because voice-to-voice
latency is dominated by waiting: TTS can start on the first sentence (or the
first long clause) while the LLM is still writing the rest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from companion.text.actions import split_actions

__all__ = [
    "Sentence",
    "ReplyChunker",
    "extract_emotions",
    "clean_for_speech",
    "strip_reasoning",
    "ReasoningFilter",
    "DisplayFilter",
    "clean_input",
    "drop_partial_tag",
]

# An emotion tag is one short word in [brackets] or <angles>: "[happy]", "<sad>".
# A bracketed word followed by "(" is a markdown link, not a tag.
_TAG_RE = re.compile(r"\[([A-Za-z][\w-]{0,23})\](?!\()|<([A-Za-z][\w-]{0,23})>")
_CLOSE_TAG_RE = re.compile(r"</[A-Za-z][\w-]{0,23}>")
# An opening bracket near the end of the buffer that may still become a tag.
_PARTIAL_TAG_RE = re.compile(r"[\[<]/?[\w-]{0,24}$")

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

_SENTENCE_END = ".!?…。！？"
_CLOSERS = "\"'”’)]»"
_CLAUSE_END = ",;:—–"
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie approx fig mt ft lt gen col sgt".split()
)

_EMOJI_RE = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols & pictographs ext.
    "\U00002600-\U000027bf"  # misc symbols, dingbats
    "\U00002b00-\U00002bff"  # arrows & stars (⭐)
    "\U0001f1e6-\U0001f1ff"  # regional indicators (flags)
    "\U0000fe0f\U0000fe0e\U0000200d\U000020e3"  # variation selectors, ZWJ, keycap
    "\U0000e000-\U0000f8ff"  # private use
    "]+"
)
_CODE_FENCE_RE = re.compile(r"```[\s\S]*?(```|$)")
_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL_RE = re.compile(r"https?://\S+")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_QUOTE_RE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET_RE = re.compile(r"^\s*[-*+•]\s+", re.MULTILINE)
_EMPHASIS_RE = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_STRAY_MARKUP_RE = re.compile(r"[*`#~|]|(?<!\w)_|_(?!\w)")
_SPACE_RE = re.compile(r"\s+")


# Lone UTF-16 surrogates (an emoji cut in half) cannot be encoded as UTF-8 and
# break tokenizers; C0/C1 control characters other than tab and newline are noise
# a model may copy into speech.
_UNSAFE_CHARS_RE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_input(text: str) -> str:
    """``text`` without lone surrogates and control characters: what may reach a model from outside."""
    return _UNSAFE_CHARS_RE.sub("", text).replace("\r\n", "\n").replace("\r", "\n") if text else text


def drop_partial_tag(text: str) -> str:
    """``text`` without an emotion tag cut off at its end (``"Sure! [hap"``): what a reply stopped mid-tag leaves."""
    return _PARTIAL_TAG_RE.sub("", text).rstrip() if text else text


def extract_emotions(text: str) -> tuple[str, list[str]]:
    """Remove emotion tags from text and return (text without tags, emotions in order).

    Closing tags like ``</happy>`` are dropped too: small models often echo them.
    """
    emotions: list[str] = []

    def _take(match: re.Match[str]) -> str:
        emotions.append((match.group(1) or match.group(2)).lower())
        return ""

    without = _TAG_RE.sub(_take, text)
    without = _CLOSE_TAG_RE.sub("", without)
    # Removing a tag can leave "word ,": keep the text tidy for display.
    without = re.sub(r"[ \t]+([,.!?;:])", r"\1", without)
    without = re.sub(r"[ \t]{2,}", " ", without)
    return without.strip(), emotions


def strip_reasoning(text: str) -> str:
    """Drop ``<think>…</think>`` blocks that reasoning models emit before answering."""
    return re.sub(r"<think>[\s\S]*?(</think>|$)", "", text)


def clean_for_speech(text: str) -> str:
    """Turn display text into what a TTS voice should say: no markdown, URLs or emoji."""
    text = _CODE_FENCE_RE.sub(" ", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _URL_RE.sub("", text)
    text = _HEADING_RE.sub("", text)
    text = _QUOTE_RE.sub("", text)
    text = _BULLET_RE.sub("", text)
    previous = None
    while previous != text:
        previous = text
        text = _EMPHASIS_RE.sub(r"\2", text)
    text = _STRAY_MARKUP_RE.sub("", text)
    text = _EMOJI_RE.sub("", text)
    text = _SPACE_RE.sub(" ", text).strip()
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    return text


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``tag``."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def _safe_length(buffer: str) -> int:
    """Length of ``buffer`` that more tokens cannot turn into part of a tag."""
    tail = _PARTIAL_TAG_RE.search(buffer[-26:])
    if tail is None:
        return len(buffer)
    return len(buffer) - (len(buffer[-26:]) - tail.start())


class ReasoningFilter:
    """Passes answer text through while swallowing ``<think>…</think>`` blocks as they stream."""

    def __init__(self) -> None:
        self._raw = ""  # text held back while it may be the start of a think tag
        self._in_think = False

    def feed(self, delta: str) -> str:
        self._raw += delta
        out: list[str] = []
        while self._raw:
            if self._in_think:
                end = self._raw.find(_THINK_CLOSE)
                if end < 0:
                    self._raw = self._raw[-(len(_THINK_CLOSE) - 1) :]
                    break
                self._raw = self._raw[end + len(_THINK_CLOSE) :].lstrip()
                self._in_think = False
                continue
            start = self._raw.find(_THINK_OPEN)
            if start >= 0:
                out.append(self._raw[:start])
                self._raw = self._raw[start + len(_THINK_OPEN) :]
                self._in_think = True
                continue
            keep = _partial_suffix(self._raw, _THINK_OPEN)
            out.append(self._raw[: len(self._raw) - keep])
            self._raw = self._raw[len(self._raw) - keep :]
            break
        return "".join(out)

    def finish(self) -> str:
        rest = "" if self._in_think else self._raw
        self._raw, self._in_think = "", False
        return rest


class DisplayFilter:
    """Streams text for display: tags and reasoning removed, only a possible partial tag held back."""

    def __init__(self) -> None:
        self._reasoning = ReasoningFilter()
        self._buffer = ""

    def feed(self, delta: str) -> str:
        self._buffer += self._reasoning.feed(delta)
        cut = _safe_length(self._buffer)
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return _strip_tags(ready)

    def finish(self) -> str:
        rest = self._buffer + self._reasoning.finish()
        self._buffer = ""
        return _strip_tags(rest)


def _strip_tags(text: str) -> str:
    return _CLOSE_TAG_RE.sub("", _TAG_RE.sub("", text))


@dataclass(frozen=True, slots=True)
class Sentence:
    """One piece of a reply that is ready to be shown, spoken and acted out."""

    index: int
    text: str  # for display: tags removed, markdown kept
    speech: str  # for TTS: markdown, URLs and emoji removed; may be "" (emoji-only)
    emotions: tuple[str, ...] = field(default_factory=tuple)


_WORD_AND_SPACE = re.compile(r"\S+\s+")


class ReplyChunker:
    """Cuts a token stream into sentences the moment each one is complete.

    The first piece is cut early at a clause boundary once it is longer than
    ``first_clause_chars``, so speech can start sooner; every piece is cut at
    ``max_chars`` at the latest (at a word boundary), so a run-on reply never
    holds back the voice.
    """

    def __init__(self, first_clause_chars: int = 40, max_chars: int = 280, first_words: int = 0) -> None:
        self.first_clause_chars = first_clause_chars
        self.max_chars = max_chars
        self.first_words = first_words  # voice: cut the very first piece after this many words (0: never)
        self._buffer = ""
        self._count = 0
        self._reasoning = ReasoningFilter()
        self._pending_emotions: list[str] = []

    @property
    def sentences_emitted(self) -> int:
        return self._count

    def feed(self, delta: str) -> list[Sentence]:
        """Add streamed text; return the sentences it completed (often none)."""
        self._buffer += self._reasoning.feed(delta)
        out: list[Sentence] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            piece, self._buffer = self._buffer[:cut], self._buffer[cut:]
            sentence = self._make(piece)
            if sentence is not None:
                out.append(sentence)
        return out

    def finish(self) -> list[Sentence]:
        """Flush what is left when the stream ends."""
        self._buffer += self._reasoning.finish()
        piece, self._buffer = self._buffer, ""
        sentence = self._make(piece, final=True)
        return [sentence] if sentence is not None else []

    # -- internals ---------------------------------------------------------

    def _safe_length(self) -> int:
        """Length of the buffer that cannot change meaning with more tokens."""
        return _safe_length(self._buffer)

    def _find_cut(self) -> int | None:
        safe = self._safe_length()
        text = self._buffer[:safe]
        if not text.strip():
            return None
        for i, ch in enumerate(text):
            if ch == "\n":
                if text[:i].strip() and self._has_words(text[:i]):
                    return i + 1
                continue
            if ch in _SENTENCE_END:
                j = i + 1
                while j < len(text) and (text[j] in _SENTENCE_END or text[j] in _CLOSERS):
                    j += 1
                if j < len(text) and text[j].isspace():
                    if ch == "." and self._is_abbreviation(text, i):
                        continue
                    if self._has_words(text[:j]):
                        return j
            elif (
                ch in _CLAUSE_END
                and self._count == 0
                and i + 1 >= self.first_clause_chars
                and i + 1 < len(text)
                and text[i + 1].isspace()
            ):
                return i + 1
        if self._count == 0 and self.first_words > 0:
            words = [m for m in _WORD_AND_SPACE.finditer(text) if any(c.isalpha() for c in m.group()) and not m.group().startswith("[")]
            if len(words) > self.first_words:  # one more word must follow: never leave a lone word behind the cut
                return words[self.first_words - 1].end()
        if len(text) >= self.max_chars:
            space = text.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None

    @staticmethod
    def _has_words(text: str) -> bool:
        clean, _ = extract_emotions(text)
        return sum(c.isalpha() for c in clean) >= 2

    @staticmethod
    def _is_abbreviation(text: str, dot: int) -> bool:
        start = dot
        while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
            start -= 1
        word = text[start:dot].lower()
        if word in _ABBREVIATIONS:
            return True
        # a single capital initial, as in "J. R. R. Tolkien"
        return len(word) == 1 and text[dot - 1].isupper()

    def _make(self, piece: str, final: bool = False) -> Sentence | None:
        display, emotions = extract_emotions(piece)
        display, spoken, acted = split_actions(display)  # "*smiles*" is shown, felt, never said
        emotions = self._pending_emotions + emotions + acted
        speech = clean_for_speech(spoken)
        if not display:
            # a tag alone ("[happy]\n"): carry its emotion to the next sentence
            self._pending_emotions = emotions
            if final and emotions:
                self._pending_emotions = []
                return self._emit("", "", emotions)
            return None
        self._pending_emotions = []
        return self._emit(display, speech, emotions)

    def _emit(self, display: str, speech: str, emotions: list[str]) -> Sentence:
        sentence = Sentence(self._count, display, speech, tuple(emotions))
        self._count += 1
        return sentence


def first_json_object(text: str) -> dict | None:
    """The first complete JSON object in model text (prose and code fences around it are ignored)."""
    start = text.find("{")
    while start >= 0:
        depth, in_str, escape = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                if escape:
                    escape = False
                elif ch == "\\":
                    escape = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    try:
                        obj = json.loads(text[start : i + 1])
                    except json.JSONDecodeError:
                        break
                    if isinstance(obj, dict):
                        return obj
                    break
        start = text.find("{", start + 1)
    return None
