"""Reply hygiene for small models (pure): what a 135M model does wrong, caught before anyone hears it.

Three habits, seen on the embedded model:
* it writes the other side's turn ("...\\nUser: and then?") or a chat
  template's end marker as text: the reply stops there;
* it opens with its own name ("Aiko: Hi!"): the prefix is never spoken;
* it loops ("grinning, grinning, grinning, ..." or the same sentence again):
  the reply stops after the first copy.

``ReplyHygiene.feed`` takes streamed text and returns what may pass on,
holding back only what could still turn out to be one of these (a partial
name at the start, a newline that may begin "User:", a phrase said twice),
so an ordinary reply is delayed by at most one word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ReplyHygiene", "TEMPLATE_MARKERS", "stop_strings"]

TEMPLATE_MARKERS = (
    "<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|start_header_id|>", "<|end|>", "<|user|>", "<|assistant|>",
    "<end_of_turn>", "<start_of_turn>", "</s>", "<|endoftext|>",
)
GENERIC_SPEAKERS = ("User", "Human", "Assistant", "AI")
MAX_PHRASE_WORDS = 8
_WORD = re.compile(r"\S+\s+")


def stop_strings(user_names: Iterable[str], char_name: str) -> list[str]:
    """Stop strings for providers that take them: the other speaker's turn starting, template markers."""
    names = _names([*user_names, char_name, *GENERIC_SPEAKERS])
    return [f"\n{n}:" for n in names] + list(TEMPLATE_MARKERS)


def _names(raw: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in raw:
        name = (name or "").strip()
        if name and name.lower() not in (n.lower() for n in out):
            out.append(name)
    return out


class ReplyHygiene:
    """Feed streamed reply text; ``stopped`` turns True when the reply must end (the caller stops the model)."""

    def __init__(self, user_names: Iterable[str] = (), char_name: str = "", *, max_repeats: int = 3) -> None:
        speakers = _names([*user_names, char_name, *GENERIC_SPEAKERS])
        self._own = [n.lower() for n in _names([char_name, char_name.split(" ")[0] if char_name else "", "Assistant", "AI"])]
        alternatives = "|".join(re.escape(n) for n in sorted(speakers, key=len, reverse=True))
        self._turn = re.compile(rf"\n[ \t]*\**[ \t]*(?:{alternatives})[ \t]*\**[ \t]*:", re.IGNORECASE)
        self._longest_turn = max((len(n) for n in speakers), default=0) + 8
        self._speakers = [n.lower() for n in speakers]
        self.max_repeats = max(2, max_repeats)
        self.stopped = False
        self.reason: str | None = None
        self._started = False  # past the point where a "Name:" prefix could be
        self._after_prefix = False
        self._head = ""  # stage 1: the start, until we know whether it is a name prefix
        self._tail = ""  # stage 2: text that may begin a turn marker
        self._partial = ""  # stage 3: the word being written
        self._words: list[str] = []  # normalised words passed or held (stage 3)
        self._held: list[str] = []  # raw words held because they may be a repetition

    # -- public -----------------------------------------------------------------

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        passed = self._marker_stage(self._prefix_stage(text))
        if self.stopped:  # a turn marker: what came before it still goes through the repetition check
            self.stopped = False
            out = self._repeat_stage(passed, final=True)
            self.stopped = True
            return out
        return self._repeat_stage(passed)

    def finish(self) -> str:
        """The text still held when the stream ends."""
        if self.stopped:
            return ""
        return self._repeat_stage(self._marker_stage(self._flush_prefix(), final=True), final=True)

    # -- stage 1: a leading "Name:" -----------------------------------------------

    def _prefix_stage(self, text: str) -> str:
        if self._started:
            if self._after_prefix:  # the space after "Name:" may come in the next chunk
                text = text.lstrip()
                self._after_prefix = not text
            return text
        self._head += text
        decided, out = self._decide_prefix(self._head)
        if not decided:
            return ""
        self._started = True
        self._head = ""
        self._after_prefix = self.reason == "name prefix" and not out
        return out

    def _flush_prefix(self) -> str:
        if self._started:
            return ""
        self._started = True
        head, self._head = self._head, ""
        decided, out = self._decide_prefix(head, final=True)
        return out if decided else head

    def _decide_prefix(self, head: str, final: bool = False) -> tuple[bool, str]:
        body = head.lstrip()
        lead = head[: len(head) - len(body)]
        stripped = body.lstrip("*").lower()
        if not stripped:
            return final, head
        for name in self._own:
            if name.startswith(stripped) and not final:
                return False, ""  # could still become "Name:"
            if stripped.startswith(name):
                rest = stripped[len(name):].lstrip("* \t")
                if not rest and not final:
                    return False, ""
                if rest.startswith(":"):
                    after = body.lstrip("*")[len(name):].lstrip("* \t")[1:].lstrip()
                    self.reason = self.reason or "name prefix"
                    return True, after
        return True, lead + body

    # -- stage 2: the other speaker's turn, template markers ----------------------

    def _marker_stage(self, text: str, final: bool = False) -> str:
        if self.stopped:
            return ""
        buf = self._tail + text
        self._tail = ""
        cut = self._first_marker(buf)
        if cut is not None:
            self.stopped = True
            self.reason = "turn marker"
            return buf[:cut]
        if final:
            return buf
        keep = self._unsafe_tail(buf)
        self._tail = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep]

    def _first_marker(self, buf: str) -> int | None:
        hits = [i for i in (buf.find(m) for m in TEMPLATE_MARKERS) if i >= 0]
        match = self._turn.search(buf)
        if match:
            hits.append(match.start())
        return min(hits) if hits else None

    def _unsafe_tail(self, buf: str) -> int:
        """How many trailing characters could be the start of a marker."""
        keep = 0
        lt = buf.rfind("<")
        if lt >= 0 and any(m.startswith(buf[lt:]) for m in TEMPLATE_MARKERS):
            keep = len(buf) - lt
        nl = buf.rfind("\n")
        if nl >= 0 and len(buf) - nl <= self._longest_turn:
            after = buf[nl + 1:].strip(" \t*").lower()
            if not after or any(s.startswith(after) or after.startswith(s) for s in self._speakers):
                keep = max(keep, len(buf) - nl)
        return keep

    # -- stage 3: runaway repetition -------------------------------------------------

    def _repeat_stage(self, text: str, final: bool = False) -> str:
        if self.stopped:
            return ""
        self._partial += text
        out: list[str] = []
        pos = 0
        for match in _WORD.finditer(self._partial):
            pos = match.end()
            out.append(self._word(match.group()))
            if self.stopped:
                return "".join(out)
        self._partial = self._partial[pos:]
        if final:
            if self._partial:
                out.append(self._word(self._partial))
                self._partial = ""
            if not self.stopped:
                out.append("".join(self._held))
                self._held = []
        return "".join(out)

    def _word(self, raw: str) -> str:
        """Take one complete word (with its trailing space); returns what may pass now."""
        norm = re.sub(r"\W+", "", raw.lower())
        if not norm:  # punctuation alone: goes with whatever its neighbours do
            if self._held:
                self._held.append(raw)
                return ""
            return raw
        self._words.append(norm)
        if len(self._words) > 4 * MAX_PHRASE_WORDS * self.max_repeats:
            del self._words[: len(self._words) - 4 * MAX_PHRASE_WORDS * self.max_repeats]
        copies, length = self._repetition()
        limit = self.max_repeats + 1 if length == 1 else self.max_repeats
        if copies >= limit:
            self.stopped = True
            self.reason = "repetition"
            self._held = []
            return ""
        if copies >= 2:  # may be the start of a loop: wait and see
            self._held.append(raw)
            return ""
        released = "".join(self._held) + raw
        self._held = []
        return released

    def _repetition(self) -> tuple[int, int]:
        """(copies, phrase length) of the phrase repeated most at the end of the words."""
        words = self._words
        best = (1, 0)
        for length in range(1, MAX_PHRASE_WORDS + 1):
            if 2 * length > len(words):
                break
            phrase = words[-length:]
            copies = 1
            while len(words) >= (copies + 1) * length and words[-(copies + 1) * length: -copies * length] == phrase:
                copies += 1
            if copies > best[0]:
                best = (copies, length)
        return best
