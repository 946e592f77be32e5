"""Stage directions in a reply (pure): "*smiles*", "(laughs softly)", "*leans closer.*".

Roleplay-trained models narrate what the character does. Read aloud, "smiles" or "laughing" is the worst thing a
listener can hear from a voice companion. A span in asterisks or parentheses whose first word (after an adverb)
is an action is shown as an action (italic) in the written reply, never spoken, and where it names a feeling
(smiles, laughs, sighs, frowns...) it moves the avatar the way an emotion tag does. Emphasis ("*really*") and
ordinary asides ("(about twenty minutes)") are left alone.
"""

from __future__ import annotations

import re

__all__ = ["split_actions", "action_emotion"]

# An action's verb, and the feeling it shows (None: an action without one).
_VERBS: dict[str, str | None] = {
    **dict.fromkeys("smile grin beam laugh giggle chuckle snicker cheer wink smirk".split(), "happy"),
    **dict.fromkeys("sigh frown pout cry sob sniffle sniff weep mope".split(), "sad"),
    **dict.fromkeys("blush fluster".split(), "embarrassed"),
    **dict.fromkeys("gasp startle".split(), "surprised"),
    **dict.fromkeys("glare scowl growl huff fume grumble".split(), "angry"),
    **dict.fromkeys("shiver tremble gulp cower flinch".split(), "scared"),
    **dict.fromkeys("hug cuddle kiss snuggle".split(), "love"),
    **dict.fromkeys("think ponder muse".split(), "thinking"),
    **dict.fromkeys("bounce squeal".split(), "excited"),
    **dict.fromkeys("laughter applause".split(), "happy"),  # nouns a model writes as directions: "(laughter)"
    **dict.fromkeys("sarcasm silence sarcastically".split(), None),
    **dict.fromkeys(
        "nod shrug wave lean look tilt hum clap yawn stretch blink raise roll jump dance twirl whisper pause cough "
        "clear gesture point scratch rub cross glance stare gaze peek sip take sit stand walk turn hold grab pat poke "
        "wiggle spin bow salute tap drum fidget shake bite lick hide adjust fold open close reach offer hand put "
        "eyes voice tone".split(),
        None,
    ),
}
# Nouns that make "(with a smile)" or "*in a soft voice*" an action too.
_MANNER = re.compile(r"^(?:with|in)\s+(?:a|an|her|his|their)\b.*\b(smile|grin|laugh|giggle|sigh|wink|voice|tone|whisper|frown|pout)s?\b")
_SPAN = re.compile(r"\*{1,2}([^*\n]{1,120}?)\*{1,2}|\(([^()\n]{1,120})\)")
_OPEN_SPAN = re.compile(r"(?:^|\s)(\*{1,2}|\()([^*()\n]{1,120})$")  # "*smiles warmly." cut at a sentence end


def _forms() -> dict[str, str | None]:
    forms: dict[str, str | None] = {}
    for verb, feeling in _VERBS.items():
        stem = verb[:-1] if verb.endswith("e") else verb
        for form in (verb, verb + "s", verb + "es", verb + "d", verb + "ed", stem + "ing", stem + "ed",
                     verb + verb[-1] + "ing", verb + verb[-1] + "ed", verb[:-1] + "ies" if verb.endswith("y") else verb,
                     verb[:-1] + "ied" if verb.endswith("y") else verb):
            forms.setdefault(form, feeling)
    return forms


_FORMS = _forms()


_LEADS = frozenset("she he they i then and a little".split())  # may come before the verb: "she smiles"


def action_emotion(content: str) -> tuple[bool, str | None]:
    """(whether ``content`` is a stage direction, the feeling it shows)."""
    raw = re.findall(r"[A-Za-z']+", content)
    words = [w.lower() for w in raw]
    if not words or len(words) > 16:
        return False, None
    manner = _MANNER.search(" ".join(words))
    if manner:
        noun = manner.group(1)
        return True, _FORMS.get(noun) if noun not in ("voice", "tone", "whisper") else None
    for i, word in enumerate(words[:3]):  # "softly laughs", "she smiles", "Aiko grins", "eyes widen"
        if word in _FORMS:
            return True, _FORMS[word]
        if not (word.endswith("ly") or word in _LEADS or (i == 0 and raw[0][0].isupper() and len(words) > 1)):
            break
    return False, None


def split_actions(text: str) -> tuple[str, str, list[str]]:
    """(the text with each stage direction as ``*italic*``, the text to speak without them, their feelings)."""
    feelings: list[str] = []
    shown: list[str] = []
    spoken: list[str] = []
    pos = 0
    for span in _SPAN.finditer(text):
        content = span.group(1) if span.group(1) is not None else span.group(2)
        is_action, feeling = action_emotion(content)
        if not is_action:
            continue
        shown.append(text[pos : span.start()] + f"*{content.strip()}*")
        spoken.append(text[pos : span.start()])
        if feeling:
            feelings.append(feeling)
        pos = span.end()
    rest = text[pos:]
    cut = _OPEN_SPAN.search(rest)
    if cut is not None:
        is_action, feeling = action_emotion(cut.group(2))
        if is_action:
            shown.append(rest[: cut.start(1)] + f"*{cut.group(2).strip()}*")
            spoken.append(rest[: cut.start(1)])
            if feeling:
                feelings.append(feeling)
            rest = ""
    shown.append(rest)
    spoken.append(rest)
    speech = re.sub(r"[ \t]{2,}", " ", "".join(spoken)).strip()
    return "".join(shown).strip(), speech, feelings
