"""A real eight-turn conversation on the embedded model and the product's defaults, judged as a listener would."""

import statistics
from pathlib import Path

import pytest

from companion.app import build_companion
from companion.config import Settings
from companion.text.review import review_reply

pytestmark = pytest.mark.slow

# Not the bench's conversation: questions about her, facts about the person, a request, a question back.
MESSAGES = [
    "Hello there, my name is Dana.",
    "What did you do this morning?",
    "I teach chemistry at a secondary school.",
    "Which season do you like best, and why?",
    "Describe your ideal weekend.",
    "My brother just adopted a puppy called Biscuit.",
    "Any ideas for a rainy Sunday?",
    "Good night, talk tomorrow!",
]


async def test_an_eight_turn_conversation_has_nothing_a_listener_would_notice(tmp_path: Path):
    """No script lines, spoken stage directions, repeats, wrong names or empty replies; at most one copied
    sentence; written replies of a median of at most 350 characters and none over 700."""
    settings = Settings()
    settings.companion.data_dir = str(tmp_path)
    companion = build_companion(settings)
    await companion.start()
    totals: dict[str, int] = {}
    replies: list[str] = []
    try:
        for text in MESSAGES:
            result = await companion.respond(text, conversation_id="dana", speaker_id="dana", speaker_name="Dana")
            assert result.error is None
            review = review_reply(result.reply, [s.speech for s in result.sentences], [*replies[-3:], text], companion.character.name)
            for key, value in review.counts().items():
                totals[key] = totals.get(key, 0) + value
            replies.append(result.reply)
    finally:
        await companion.close(memory_grace=0)
    shown = "\n".join(f"- {r!r}" for r in replies)
    assert {k: v for k, v in totals.items() if k != "copied" and v} == {}, shown
    assert totals["copied"] <= 1, shown
    lengths = [len(r) for r in replies]
    assert statistics.median(lengths) <= 350 and max(lengths) <= 700, (lengths, shown)


async def test_a_question_about_a_remembered_fact_is_answered_with_it(tmp_path: Path):
    """Told 'I work as a pharmacist' in one session, she answers 'what do I do for a living?' with it in the next, on the embedded model."""
    settings = Settings()
    settings.companion.data_dir = str(tmp_path)
    first = build_companion(settings)
    await first.start()
    try:
        await first.respond("I work as a pharmacist in Leeds.", conversation_id="monday", speaker_id="noor", speaker_name="Noor")
        await first.memory.drain(120)
    finally:
        await first.close(memory_grace=0)
    later = build_companion(settings)
    await later.start()
    try:
        result = await later.respond("What do I do for a living?", conversation_id="friday", speaker_id="noor", speaker_name="Noor")
    finally:
        await later.close(memory_grace=0)
    assert "pharmacist" in result.reply.lower(), result.reply
    assert result.error is None and not result.interrupted
