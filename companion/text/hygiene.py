"""Reply hygiene for small models (pure): what a 135M model does wrong, caught before anyone hears it.

Habits seen on the embedded model:
* it writes a script: someone's turn ("...\\nUser: and then?", "That's fun. Mike: yes!"), whatever the name,
  or a chat template's end marker as text: the reply stops there;
* it opens with its own name ("Aiko: Hi!", "Aiko, I think..."): the prefix is never spoken;
* it loops ("grinning, grinning, grinning, ..."): the reply stops after the first copy;
* it says a sentence again, copies one from its last replies, or calls itself by the person's name
  (``sentences.SentenceGuard``).

``ReplyHygiene.feed`` takes streamed text and returns what may pass on,
holding back only what could still turn out to be one of these (a partial
name at the start, capitalised words after a line or sentence start that may
end in a colon, a phrase said twice, the start of a sentence said before), so
an ordinary reply is delayed by a word or two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from companion.text.sentences import SentenceGuard, take_words

__all__ = ["ReplyHygiene", "TEMPLATE_MARKERS", "stop_strings"]

TEMPLATE_MARKERS = (
    "<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|start_header_id|>", "<|end|>", "<|user|>", "<|assistant|>",
    "<end_of_turn>", "<start_of_turn>", "</s>", "<|endoftext|>",
)
GENERIC_SPEAKERS = ("User", "Human", "Assistant", "AI")
MAX_PHRASE_WORDS = 8
# A script turn: one to three capitalised words and a colon, at a line start or right after a sentence.
_NAME = r"[A-Z][\w'’.\-]*(?:[ \t]+[A-Z][\w'’\-]*){0,2}"
_SCRIPT = re.compile(rf"(?:(?<=\n)|(?<=[.!?…][ \t])|(?<=[.!?…][\"”)][ \t]))[ \t]*\**[ \t]*({_NAME})[ \t]*\**[ \t]*:(?![\d/])")
_MAYBE_SCRIPT = re.compile(rf"(?:\n|[.!?…][\"”)]?[ \t])[ \t]*\**[ \t]*(?:{_NAME})?[ \t]*\**[ \t]*$")
# What comes before a colon in ordinary writing, not a speaker: "Note: ...", "Monday: gym", "Step 2: ...".
GREETINGS = ("hey", "hi", "hello", "hiya", "oh", "ah", "aw", "well", "yes", "yeah", "wow", "thanks", "thank you")
_GREETING = re.compile(rf"((?:{'|'.join(GREETINGS)})),?[ \t]+(?=\S)", re.I)
LABELS = frozenset(
    "note notes nb ps p.s tip tips hint example examples answer answers question questions warning caution important "
    "summary update edit reminder fact bonus step steps ingredients instructions directions method recipe pros cons "
    "option options result results source sources disclaimer total price cost time date place location address title "
    "topic subject definition meaning translation pronunciation rule rules goal goals plan idea ideas score status "
    "weather temperature forecast today tomorrow tonight yesterday morning afternoon evening night breakfast lunch "
    "dinner first second third next then finally also here there this that why how what when where who yes no "
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july august "
    "september october november december spring summer autumn fall winter "
    "q a fun p s the my your our his her their its".split()
)


def is_label(name: str) -> bool:
    """"Note", "Step 2", "Fun Fact": a label before a colon, not someone's turn."""
    words = name.lower().replace("*", "").split()
    return not words or words[0].rstrip(".") in LABELS or " ".join(words) in LABELS


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

    def __init__(
        self, user_names: Iterable[str] = (), char_name: str = "", *, max_repeats: int = 3, recent_replies: Iterable[str] = (),
        message: str = "",
    ) -> None:
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
        self._capitalise = False  # the first letter after a dropped "Aiko, " starts the sentence
        self._head = ""  # stage 1: the start, until we know whether it is a name prefix
        self._tail = ""  # stage 2: text that may begin a turn marker
        self._partial = ""  # stage 3: the word being written
        self._words: list[str] = []  # normalised words passed or held (stage 3)
        self._held: list[str] = []  # raw words held because they may be a repetition
        self._ctx = "\n"  # stage 2: the last characters passed (the reply starts at a line start)
        self._list = False  # stage 2: a line ended in a colon ("Here are three ideas:"): "Word:" lines are a list
        # stage 4: sentences said before, a wrong name for herself
        self.sentences = SentenceGuard([char_name, "Assistant"], recent_replies, message)

    # -- public -----------------------------------------------------------------

    def feed(self, text: str) -> str:
        if self.stopped or not text:
            return ""
        passed = self._marker_stage(self._prefix_stage(text))
        marker, self.stopped = self.stopped, False  # a turn marker: what came before it still goes through stages 3, 4
        out = self._repeat_stage(passed, final=marker)
        ending = marker or self.stopped
        out = self._sentence_stage(out, final=ending)
        self.stopped = ending or self.sentences.stopped
        return out

    def finish(self) -> str:
        """The text still held when the stream ends."""
        if self.stopped:
            return ""
        out = self._repeat_stage(self._marker_stage(self._flush_prefix(), final=True), final=True)
        return self._sentence_stage(out, final=True)

    # -- stage 4: sentences said before, a wrong name for herself ---------------------

    def _sentence_stage(self, text: str, final: bool = False) -> str:
        out = self.sentences.feed(text) if text else ""
        if final and not self.sentences.stopped:
            out += self.sentences.finish()
        if self.sentences.reason and not self.reason:
            self.reason = self.sentences.reason
        return out

    # -- stage 1: a leading "Name:" -----------------------------------------------

    def _prefix_stage(self, text: str) -> str:
        if self._started:
            if self._after_prefix:  # the space after "Name:" may come in the next chunk
                text = text.lstrip()
                self._after_prefix = not text
                if text and self._capitalise:
                    text, self._capitalise = text[:1].upper() + text[1:], False
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
                if rest.startswith((":", ",")):
                    after = body.lstrip("*")[len(name):].lstrip("* \t")[1:].lstrip()
                    if rest.startswith(","):  # a vocative to herself: "Aiko, I think..." -> "I think..."
                        after = after[:1].upper() + after[1:]
                        self._capitalise = not after
                    self.reason = self.reason or "name prefix"
                    return True, after
        if not final and any(g.startswith(stripped.rstrip(", \t")) for g in GREETINGS):
            return False, ""  # may still become "Hey Mika"
        greeting = _GREETING.match(body)
        if greeting:  # "Hey Mika! ..." said by Mika: she greets the person, not herself -> "Hey! ..."
            rest = body[greeting.end():]
            low = rest.lower()
            for name in self._own:
                if name.startswith(low) and not final:
                    return False, ""
                if low.startswith(name) and (len(low) == len(name) or not (low[len(name)].isalnum() or low[len(name)] in "'’")):
                    if len(low) == len(name) and not final:
                        return False, ""
                    self.reason = self.reason or "name prefix"
                    return True, lead + greeting.group(1) + rest[len(name):]
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
        passed = buf[: len(buf) - keep]
        self._tail = buf[len(buf) - keep:] if keep else ""
        if passed:
            if re.search(r":[ \t*]*\n", self._ctx + passed):
                self._list = True
            self._ctx = (self._ctx + passed)[-3:]
        return passed

    def _first_marker(self, buf: str) -> int | None:
        hits = [i for i in (buf.find(m) for m in TEMPLATE_MARKERS) if i >= 0]
        match = self._turn.search(buf)
        if match:
            hits.append(match.start())
        hay = self._ctx + buf
        for script in _SCRIPT.finditer(hay):
            if script.end() <= len(self._ctx) or self._list or is_label(script.group(1)):
                continue
            if re.search(r":[ \t*]*\n", hay[: script.start() + 1]):  # "...ideas:\nApples: ..." is a list
                self._list = True
                continue
            hits.append(max(0, script.start() - len(self._ctx)))
            break
        return min(hits) if hits else None

    def _unsafe_tail(self, buf: str) -> int:
        """How many trailing characters could be the start of a marker."""
        keep = 0
        if not self._list:
            hay = self._ctx + buf
            maybe = _MAYBE_SCRIPT.search(hay[-48:])
            if maybe is not None:
                start = len(hay) - len(hay[-48:]) + maybe.start()
                keep = len(hay) - max(start, len(self._ctx))
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
        words, self._partial = take_words(self._partial + text)
        out: list[str] = []
        for word in words:
            out.append(self._word(word))
            if self.stopped:
                return "".join(out)
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
