"""SillyTavern-style macros in card text: {{char}}, {{user}}, {{random}}, {{pick}}, {{roll}}, comments.

Pure. ``{{pick}}`` must give the same answer every time within one
conversation (so a character's "favourite colour" does not change mid-chat)
while ``{{random}}`` changes each time; both take a seed from the caller.
"""

from __future__ import annotations

import hashlib
import random
import re

__all__ = ["expand"]

_MACRO_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_LEGACY_RE = re.compile(r"<(BOT|USER)>", re.IGNORECASE)
_ROLL_RE = re.compile(r"^\s*d?(\d{1,6})\s*$", re.IGNORECASE)


def _options(arg: str) -> list[str]:
    # "{{random::a::b}}" and "{{random:a,b}}" are both in use; commas may be escaped as "\,".
    if arg.startswith(":"):
        return [o for o in arg[1:].split("::")]
    parts = re.split(r"(?<!\\),", arg)
    return [p.replace("\\,", ",") for p in parts]


def expand(text: str, *, char: str, user: str, seed: str = "", rng: random.Random | None = None) -> str:
    """Expand the macros in ``text``. ``seed`` makes ``{{pick}}`` stable (use the conversation id)."""
    rng = rng or random.Random()
    counter = 0

    def sub(match: re.Match[str]) -> str:
        nonlocal counter
        body = match.group(1)
        name, _, arg = body.partition(":")
        key = name.strip().lower()
        if body.lstrip().startswith("//"):
            return ""
        if key == "char":
            return char
        if key == "user":
            return user
        if key in ("comment", "hidden_key"):
            return ""
        if key == "reverse":
            return arg[::-1]
        if key == "random" and arg:
            return rng.choice(_options(arg)).strip()
        if key == "pick" and arg:
            counter += 1
            digest = hashlib.sha256(f"{seed}\x00{counter}\x00{arg}".encode()).digest()
            options = _options(arg)
            return options[int.from_bytes(digest[:8], "big") % len(options)].strip()
        if key == "roll":
            roll = _ROLL_RE.match(arg)
            if roll and int(roll.group(1)) > 0:
                return str(rng.randint(1, int(roll.group(1))))
        return match.group(0)  # unknown macros stay as written (e.g. {{original}}, handled by the prompt)

    text = _MACRO_RE.sub(sub, text)
    return _LEGACY_RE.sub(lambda m: char if m.group(1).lower() == "bot" else user, text)
