import asyncio

from companion.app import build_companion
from companion.character.persona import default_character
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.testing import ScriptedLLM, eventually


def companion_with(settings, llm):
    return Companion(
        settings, llm=llm, character=default_character(), history=HistoryStore(settings.data_path() / "history.sqlite3")
    )


async def test_conversation_is_remembered_across_a_restart(fake_openai, settings_for):
    """After a restart, the earlier exchange is part of the next prompt sent to the LLM."""
    settings = settings_for(fake_openai)
    first = build_companion(settings)
    await first.start()
    await first.respond("My dog is called Biscuit.", conversation_id="c", speaker_id="alice")
    await first.close()

    second = build_companion(settings)
    await second.start()
    result = await second.respond("What is my dog called?", conversation_id="c", speaker_id="alice")
    await second.close()
    assert result.reply and result.error is None
    sent = fake_openai.requests[-1]["messages"]
    contents = [m["content"] for m in sent]
    assert "My dog is called Biscuit." in contents
    assert any("Hello there!" in c for c in contents if isinstance(c, str))  # the stored reply
    assert sent[-1] == {"role": "user", "content": "What is my dog called?"}


async def test_persona_and_names_are_in_the_prompt(tmp_path, settings_for, fake_openai):
    """The system prompt carries the character with {{char}}/{{user}} replaced by real names."""
    settings = settings_for(fake_openai)
    llm = ScriptedLLM(["Hi Bob!"])
    comp = companion_with(settings, llm)
    await comp.start()
    await comp.respond("hello", conversation_id="x", speaker_id="bob", speaker_name="Bob")
    await comp.close()
    system = llm.prompts[0][0]["content"]
    assert "You are Mika, talking with Bob" in system
    assert "{{" not in system
    greeting = llm.prompts[0][-2]  # after the card's example turns, right before the message
    assert greeting["role"] == "assistant" and "What are we doing today?" in greeting["content"]


async def test_several_speakers_are_told_apart(settings_for, fake_openai):
    """With two people in one conversation, each user message carries its speaker's name."""
    llm = ScriptedLLM(["Okay."])
    comp = companion_with(settings_for(fake_openai), llm)
    await comp.start()
    await comp.respond("I like tea", conversation_id="room", speaker_id="ann", speaker_name="Ann")
    await comp.respond("I like coffee", conversation_id="room", speaker_id="ben", speaker_name="Ben")
    stored = await comp.history.recent("room", 10)
    await comp.close()
    users = [m["content"] for m in llm.prompts[1] if m["role"] == "user"]
    assert users[-2:] == ["Ann: I like tea", "Ben: I like coffee"]  # (after the card's example turns)
    assert [m.speaker_id for m in stored] == ["ann", "companion", "ben", "companion"]


async def test_user_message_is_kept_when_the_llm_fails(settings_for, fake_openai):
    """A failing provider loses no data: the user's message is stored and the error reported."""
    fake_openai.modes.extend(["401"])
    comp = build_companion(settings_for(fake_openai))
    await comp.start()
    result = await comp.respond("remember this", conversation_id="c")
    stored = await comp.history.recent("c", 10)
    await comp.close()
    assert result.error and "401" in result.error
    assert [m.content for m in stored] == ["remember this"]


async def test_a_small_models_bad_habits_never_reach_history(settings_for, fake_openai):
    """A leading name, the user's next turn and a loop are cut from the reply the person sees and history keeps."""
    settings = settings_for(fake_openai)
    char = default_character().name
    llm = ScriptedLLM([f"{char}: I love tea!\nBob: me too", "Yes yes yes yes yes yes yes yes"])
    comp = companion_with(settings, llm)
    await comp.start()
    first = await comp.respond("hello", conversation_id="h", speaker_id="bob", speaker_name="Bob")
    second = await comp.respond("do you?", conversation_id="h", speaker_id="bob", speaker_name="Bob")
    stored = [m.content for m in await comp.history.recent("h", 10) if m.role == "assistant"]
    await comp.close()
    assert first.reply == "I love tea!"
    assert second.reply.split() == ["Yes"]
    assert stored == ["I love tea!", "Yes"]
    assert "\nBob:" in llm.options[0].stop  # providers that take stop strings stop there themselves


async def test_commentary_preempted_by_a_person_ends_as_interrupted_not_failed(settings_for, fake_openai):
    """A person's message stops game commentary at once; the commentary is marked interrupted, with no error."""
    from companion.llm.base import Priority

    settings = settings_for(fake_openai)
    long = " ".join(f"w{i}" for i in range(200))
    llm = ScriptedLLM([long, "Hi Bob!"], token_delay=0.01)
    comp = companion_with(settings, llm)
    await comp.start()
    commentary = asyncio.create_task(
        comp.respond("(in the game chess) the opponent moved", conversation_id="game:chess", speaker_id="game:chess",
                     platform="game", priority=Priority.COMMENTARY)
    )
    await eventually(lambda: bool(llm.prompts), what="the commentary being generated")
    reply = await comp.respond("hello", conversation_id="web", speaker_id="bob", speaker_name="Bob")
    comment = await commentary
    await comp.close()
    assert reply.reply == "Hi Bob!" and reply.error is None
    assert comment.interrupted and comment.error is None
    assert len(comment.reply.split()) < 100


async def test_a_conversation_longer_than_the_context_still_gets_answers(settings_for, fake_openai):
    """When the prompt outgrows the model's context, older messages are left out and the reply still comes."""
    from companion.llm.base import LLMContextOverflow

    class SmallContext(ScriptedLLM):
        async def _stream(self, messages, options):
            if len(messages) > 10:  # the system prompt, the card's 4 example turns, the greeting and 4 more
                raise LLMContextOverflow("the prompt is longer than the context window")
            async for chunk in super()._stream(messages, options):
                yield chunk

    settings = settings_for(fake_openai)
    llm = SmallContext(["Sure!"])
    comp = companion_with(settings, llm)
    await comp.start()
    results = [await comp.respond(f"message {i}", conversation_id="long") for i in range(6)]
    await comp.close()
    assert all(r.reply == "Sure!" and r.error is None for r in results)
    assert llm.prompts[-1][-1]["content"] == "message 5"


async def test_replies_that_are_heard_get_the_short_budget(settings_for, fake_openai):
    """Voice, stream and game replies ask for spoken_max_tokens; web and terminal text for max_tokens."""
    settings = settings_for(fake_openai)
    llm = ScriptedLLM(["Sure."])
    comp = companion_with(settings, llm)
    await comp.start()
    for platform in ("voice", "twitch", "game", "web", "cli", "discord"):
        await comp.respond("hi", conversation_id=platform, platform=platform)
    await comp.close()
    budgets = [o.max_tokens for o in llm.options]
    spoken, written = settings.llm.spoken_max_tokens, settings.llm.max_tokens
    assert spoken < written
    assert budgets == [spoken, spoken, spoken, written, written, written]


async def test_a_reply_cut_by_a_failure_is_stored_and_prompted_as_a_fragment(fake_openai, settings_for):
    """When the LLM server dies mid-reply, the fragment is stored as interrupted and fed back ending in "…"."""
    settings = settings_for(fake_openai)
    fake_openai.reply = "[happy] Well, the answer is"
    fake_openai.modes.extend(["drop"])
    app = build_companion(settings)
    await app.start()
    try:
        failed = await app.respond("What is the answer?", conversation_id="c", speaker_id="alice")
        assert failed.error and failed.interrupted
        stored = (await app.history.recent("c", 10))[-1]
        assert stored.role == "assistant" and stored.interrupted and stored.content.startswith("Well,")
        fake_openai.reply = "Sorry, I lost my thread."
        await app.respond("Hello?", conversation_id="c", speaker_id="alice")
    finally:
        await app.close()
    assistant = [m["content"] for m in fake_openai.requests[-1]["messages"] if m["role"] == "assistant"]
    assert any(c.startswith("Well,") and c.endswith("…") for c in assistant)


def test_partial_emotion_tags_are_dropped_from_fragments():
    """A reply stopped inside a tag ("Sure! [hap") keeps its words, not the half tag."""
    from companion.text.chunking import drop_partial_tag

    assert drop_partial_tag("Sure! [hap") == "Sure!"
    assert drop_partial_tag("[happy") == ""
    assert drop_partial_tag("All done.") == "All done."
