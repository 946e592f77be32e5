"""Memory across sessions, through the real CLI, with a local OpenAI-compatible server."""

import asyncio
import json
import sqlite3
import time

import pytest

from companion.app import build_companion
from companion.config import Settings
from companion.memory.store import SELF
from companion.testing import eventually
from tests.cli.test_cli import companion, config_file

pytestmark = pytest.mark.slow

FACTS = json.dumps({"facts": [
    {"about": "user", "subject": "sister name", "fact": "Alice's sister is called Ottilie.", "importance": 7},
    {"about": "self", "subject": "mood", "fact": "I enjoyed hearing about Alice's family.", "importance": 3},
]})


def system_prompt(request) -> str:
    return request["messages"][0]["content"]


def memory_note(request) -> str:
    """Recalled memories travel with the new message (the system prompt stays a cacheable prefix)."""
    return request["messages"][-1]["content"]


async def test_fact_from_session_one_is_recalled_in_session_three(tmp_path, fake_openai):
    """A fact told in one process is in the prompt two restarts later, in another conversation."""
    cfg = config_file(tmp_path, fake_openai, "memory-on")
    fake_openai.extraction_reply = FACTS
    code, _, err = await companion("--config", cfg, "chat", "-m", "My sister Ottilie visits today", "--speaker", "alice", "--conversation", "s1", "--json")
    assert code == 0, err
    fake_openai.extraction_reply = '{"facts": []}'
    await companion("--config", cfg, "chat", "-m", "I like rainy days", "--speaker", "alice", "--conversation", "s2", "--json")
    code, _, err = await companion("--config", cfg, "chat", "-m", "Do you remember my sister?", "--speaker", "alice", "--conversation", "s3", "--json")
    assert code == 0, err
    chat_requests = [r for r in fake_openai.requests if "response_format" not in r]
    assert "Alice's sister is called Ottilie." in memory_note(chat_requests[-1])
    assert "What you remember" not in memory_note(chat_requests[0])  # nothing was known before
    assert system_prompt(chat_requests[0]) == system_prompt(chat_requests[-1])  # memories leave the prefix alone
    code, out, _ = await companion("--config", cfg, "memory", "search", "sister", "--speaker", "alice", "--json")
    assert code == 0 and json.loads(out)[0]["content"] == "Alice's sister is called Ottilie."


async def test_one_off_chat_waits_for_slow_extraction(tmp_path, fake_openai):
    """`companion chat -m` keeps what it learnt even when extraction takes seconds after the reply."""
    cfg = config_file(tmp_path, fake_openai, "memory-on")
    fake_openai.extraction_reply = FACTS
    fake_openai.extraction_delay = 2.0
    code, _, err = await companion("--config", cfg, "chat", "-m", "My sister Ottilie visits today", "--speaker", "alice", "--json")
    assert code == 0, err
    code, out, _ = await companion("--config", cfg, "memory", "list", "--speaker", "alice", "--json")
    assert code == 0 and "Alice's sister is called Ottilie." in [m["content"] for m in json.loads(out)]


async def test_a_fact_said_twice_is_one_memory(tmp_path, fake_openai):
    """Repeating a fact refreshes the stored memory instead of storing a copy; bare words are not memories."""
    fake_openai.extraction_reply = json.dumps({"facts": [
        {"about": "user", "subject": "dog", "fact": "Alice's dog is called Biscuit.", "importance": 6},
        {"about": "user", "subject": "dog", "fact": "Alice's dog is called Biscuit", "importance": 6},
        {"about": "self", "subject": "dog", "fact": "Biscuit", "importance": 6},
    ]})
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    for conversation in ("a", "b"):
        await comp.respond("My dog is called Biscuit", conversation_id=conversation, speaker_id="alice")
        await comp.memory.drain()
    about_alice = sorted((m.kind, m.content) for m in await comp.memory.store.list("alice", include_superseded=True))
    about_self = [m.content for m in await comp.memory.store.list(SELF, include_superseded=True)]
    await comp.close()
    # one extracted fact and her own words, each once
    assert about_alice == [("episode", "My dog is called Biscuit"), ("fact", "Alice's dog is called Biscuit.")]
    assert about_self == []


def extraction_asked(server) -> bool:
    """The stand-in server has been asked for the "memories" JSON (an extraction is under way)."""
    return any(((r.get("response_format") or {}).get("json_schema") or {}).get("name") == "memories" for r in server.requests)


def mem_settings(tmp_path, server, folder: str = "d") -> Settings:
    return Settings.model_validate({
        "companion": {"data_dir": str(tmp_path / folder)},
        "llm": {"provider": "openai", "openai": {"base_url": server.base_url, "model": "test-model"}},
    })


async def facts_after_restart(tmp_path, fake_openai, folder: str = "d") -> list[str]:
    """A new process resumes the queued extraction: the facts about Alice once it is done."""
    fake_openai.extraction_delay = 0
    second = build_companion(mem_settings(tmp_path, fake_openai, folder))
    await second.start()
    await second.memory.drain(10)
    facts = [m.content for m in await second.memory.store.list("alice") if m.kind == "fact"]
    await second.close()
    return facts


async def test_forget_requests_remove_memories(tmp_path, fake_openai):
    """'forget that' drops what was just learnt (facts and words); 'forget everything about me' drops all and the log."""
    fake_openai.extraction_reply = FACTS
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    await comp.respond("My sister Ottilie visits", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await comp.memory.drain()
    assert sorted(m.content for m in await comp.memory.store.list("alice")) == [
        "Alice's sister is called Ottilie.", "My sister Ottilie visits"]  # the fact and her own words
    await comp.respond("Actually, forget that.", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await comp.memory.drain()
    assert await comp.memory.store.list("alice") == []
    await comp.respond("My sister Ottilie visits again", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await comp.memory.drain()
    await comp.respond("Please forget everything about me.", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await comp.memory.drain()
    assert await comp.memory.store.list("alice", include_superseded=True) == []
    said = [m.content for m in await comp.history.recent("c", 50) if m.speaker_id == "alice"]
    assert said == []
    assert not any("Ottilie" in text for text in comp.memory.embedder._recent or {})  # nor the embedder's recent texts
    await comp.close()
    with sqlite3.connect(tmp_path / "d" / "memory.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM memories WHERE person_id = 'alice'").fetchone()[0] == 0


async def test_extraction_runs_after_the_reply_and_yields_to_new_turns(tmp_path, fake_openai):
    """A reply returns before extraction; a new turn cancels extraction, which is retried afterwards."""
    fake_openai.extraction_reply = FACTS
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    memory = comp.memory
    release = asyncio.Event()
    original = memory._extract

    async def slow_extract(exchange):
        await release.wait()
        await original(exchange)

    memory._extract = slow_extract
    start = time.perf_counter()
    await comp.respond("My sister Ottilie visits", conversation_id="c", speaker_id="alice")
    assert time.perf_counter() - start < 2
    assert memory.extracted == 0  # not done yet: the reply did not wait for it
    await eventually(lambda: memory._current is not None, what="the extraction starting")  # noqa: SLF001
    running = memory._current
    assert running is not None and not running.done()
    await comp.respond("And how are you?", conversation_id="c", speaker_id="alice")
    assert running.cancelled()  # the new turn took the LLM back
    release.set()
    await memory.drain()
    assert memory.extracted >= 2
    await comp.close()


async def test_long_conversations_are_summarised_into_memories(tmp_path, fake_openai):
    """Every summary_every messages a summary is stored; it stands in for history that fell out of the prompt."""
    settings = mem_settings(tmp_path, fake_openai)
    settings.memory.summary_every = 4
    fake_openai.reply = "Alice and Mika talked about Alice's trip to Lisbon next spring."
    comp = build_companion(settings)
    await comp.start()
    for text in ("I am going to Lisbon", "next spring, with my sister"):
        await comp.respond(text, conversation_id="trip", speaker_id="alice", speaker_name="Alice")
    await comp.memory.drain()
    summaries = [m for m in await comp.memory.store.list("alice") if m.kind == "summary"]
    assert len(summaries) == 1 and "Lisbon" in summaries[0].content
    summary_request = next(r for r in fake_openai.requests if "Summarise" in r["messages"][0]["content"])
    assert "I am going to Lisbon" in summary_request["messages"][1]["content"]
    # Once the prompt's history no longer reaches the start, the summary stands in for what fell out.
    settings.llm.history_messages = 2
    await comp.respond("Any tips for the food there?", conversation_id="trip", speaker_id="alice", speaker_name="Alice")
    await comp.close()
    last = [r for r in fake_openai.requests if "response_format" not in r and "Summarise" not in r["messages"][0]["content"]][-1]
    note = last["messages"][-1]["content"]
    assert "Alice and Mika talked about Alice's trip to Lisbon" in note and note.count("trip to Lisbon") == 1
    assert "I am going to Lisbon" not in [m["content"] for m in last["messages"][1:-1]]  # out of the history


async def test_extraction_preempted_by_a_game_action_is_completed_later(tmp_path, fake_openai):
    """A forced game action takes the model from memory work at once; the extraction is retried and stored."""
    from companion.llm.base import GenerationOptions, Priority

    fake_openai.extraction_reply = FACTS
    fake_openai.extraction_delay = 0.5  # a slow local model
    settings = mem_settings(tmp_path, fake_openai).model_copy(deep=True)
    settings.llm.openai.concurrency = 1  # one request at a time, like a local model
    comp = build_companion(settings)
    await comp.start()
    await comp.respond("My sister Ottilie visits", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await eventually(lambda: extraction_asked(fake_openai), what="the extraction request")
    assert comp.memory.pending() and comp.memory.extracted == 0  # extraction is waiting on the model
    started = time.perf_counter()
    move = GenerationOptions(max_tokens=10, priority=Priority.FORCED_ACTION)
    answer = "".join([c.text async for c in comp.llm.stream([{"role": "user", "content": "your move"}], move)])
    assert answer and time.perf_counter() - started < 0.4  # it did not wait out the 0.5 s extraction
    assert comp.llm.stats.preempted[Priority.BACKGROUND] >= 1
    await comp.memory.drain(10)
    await comp.close()
    assert comp.memory.extracted >= 1  # nothing lost: the preempted extraction ran again


async def test_own_words_are_recalled_three_processes_later_when_the_model_extracts_nothing(tmp_path, fake_openai):
    """With a model that extracts no facts (like the embedded one), what the person said is still in session 3's prompt."""
    cfg = config_file(tmp_path, fake_openai, "memory-on")
    fake_openai.extraction_reply = '{"facts": []}'
    code, _, err = await companion("--config", cfg, "chat", "-m", "My cat is called Pepper, she is black and white.",
                                   "--speaker", "robin", "--conversation", "s1", "--json")
    assert code == 0, err
    await companion("--config", cfg, "chat", "-m", "I spent the whole day gardening.", "--speaker", "sam", "--conversation", "s2")
    code, _, err = await companion("--config", cfg, "chat", "-m", "What is my cat called?", "--speaker", "robin",
                                   "--conversation", "s3", "--json")
    assert code == 0, err
    prompt = memory_note([r for r in fake_openai.requests if "response_format" not in r][-1])
    assert 'said today: "My cat is called Pepper, she is black and white."' in prompt
    assert "gardening" not in prompt  # someone else's words never leak into Robin's prompt


async def test_a_changed_statement_replaces_the_older_one(tmp_path, fake_openai):
    """'My favourite colour is now lavender' supersedes '... is teal': only lavender is recalled afterwards."""
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    await comp.respond("My favourite colour is teal, like the sea.", conversation_id="c", speaker_id="robin")
    await comp.memory.drain()
    await comp.respond("My favourite colour is now lavender.", conversation_id="c", speaker_id="robin")
    await comp.memory.drain()
    _, _, block = await comp.memory.prepare("robin", "What is my favourite colour?", conversation_id="c")
    stored = await comp.memory.store.list("robin", include_superseded=True)
    await comp.close()
    assert "lavender" in block and "teal" not in block
    teal = [m for m in stored if "teal" in m.content]
    assert teal and all(m.superseded_by is not None for m in teal)


async def test_words_the_history_still_shows_are_not_quoted_again(tmp_path, fake_openai):
    """What they said a few turns ago is in the prompt's history: the memory note does not quote it a second time,
    though a new conversation (whose history does not show it) still gets it; the next turn's prompt reads each once."""
    fake_openai.extraction_reply = '{"facts": []}'
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    said = "My cat is called Pepper, she is black and white."
    await comp.respond(said, conversation_id="c", speaker_id="robin")
    await comp.memory.drain()
    _, _, shown = await comp.memory.prepare("robin", "What is my cat called?", conversation_id="c", shown=[said])
    _, _, elsewhere = await comp.memory.prepare("robin", "What is my cat called?", conversation_id="d")
    await comp.respond("What is my cat called?", conversation_id="c", speaker_id="robin")
    prompt = [r for r in fake_openai.requests if "response_format" not in r][-1]["messages"]
    await comp.close()
    assert "Pepper" not in shown
    assert "Pepper" in elsewhere
    assert sum("Pepper" in str(m["content"]) for m in prompt) == 1, prompt


async def test_forgetting_a_topic_removes_words_and_queued_extraction(tmp_path, fake_openai):
    """'forget my allergy' removes the episodic item and the extraction still queued for it; other memories stay."""
    fake_openai.extraction_reply = json.dumps({"facts": [
        {"about": "user", "subject": "allergy", "fact": "Robin is allergic to peanuts.", "importance": 8}]})
    fake_openai.extraction_delay = 1.0
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    await comp.respond("My dog Rex loves long walks in the park.", conversation_id="c", speaker_id="robin")
    await comp.respond("I have a bad peanut allergy, so no satay for me.", conversation_id="c", speaker_id="robin")
    await comp.respond("Please forget my peanut allergy.", conversation_id="c", speaker_id="robin")
    await comp.memory.drain(20)
    left = [m.content for m in await comp.memory.store.list("robin", include_superseded=True)]
    await comp.close()
    assert not any("peanut" in m.lower() for m in left), left
    assert any("Rex" in m for m in left)


async def test_queued_extraction_survives_a_restart(tmp_path, fake_openai):
    """Extraction still queued at shutdown is saved and completed at the next start."""
    fake_openai.extraction_reply = FACTS
    fake_openai.extraction_delay = 30  # the model is busy: nothing is extracted before shutdown
    first = build_companion(mem_settings(tmp_path, fake_openai))
    await first.start()
    await first.respond("My sister Ottilie visits", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await first.close(memory_grace=0)
    assert first.memory.extracted == 0
    assert await facts_after_restart(tmp_path, fake_openai) == ["Alice's sister is called Ottilie."]


async def test_the_embedded_model_learns_only_what_people_said(tmp_path, fake_openai):
    """In strict mode (tiny models) ungrounded facts and facts about the character itself are dropped."""
    fake_openai.extraction_reply = json.dumps({"facts": [
        {"about": "user", "subject": "cat", "fact": "Robin's cat Biscuit is a grumpy ginger tabby.", "importance": 6},
        {"about": "user", "subject": "boat", "fact": "Robin owns a sailing boat in Marseille.", "importance": 6},
        {"about": "self", "subject": "cat", "fact": "Biscuit is a grumpy, very, very grinning cat.", "importance": 6},
    ]})
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    comp.memory.strict = True
    await comp.start()
    await comp.respond("My cat is called Biscuit, she's a grumpy ginger tabby.", conversation_id="c", speaker_id="robin", speaker_name="Robin")
    await comp.memory.drain()
    facts = [m.content for m in await comp.memory.store.list("robin") if m.kind == "fact"]
    about_self = await comp.memory.store.list(SELF)
    await comp.close()
    assert facts == ["Robin's cat Biscuit is a grumpy ginger tabby."]
    assert about_self == []


async def test_the_rolling_summary_is_shown_when_history_was_cut_even_if_not_recalled(tmp_path, fake_openai):
    """With earlier=True the conversation's latest summary joins the note although recall did not pick it."""
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    comp.memory.recall_k = 1
    await comp.start()
    person = await comp.memory.store.person_for("alice")
    store, embed = comp.memory.store, comp.memory.embedder
    summary = "They planned a picnic by the river for Saturday."
    await store.add(person, summary, (await embed.embed([summary]))[0], kind="summary", conversation_id="c")
    said = "My bicycle has a flat tyre again."
    await store.add(person, said, (await embed.embed([said]))[0], kind="episode", conversation_id="c")
    _, _, plain = await comp.memory.prepare("alice", "How do I fix a bicycle tyre?", conversation_id="c")
    _, _, cut = await comp.memory.prepare("alice", "How do I fix a bicycle tyre?", conversation_id="c", earlier=True)
    await comp.close()
    assert "picnic" not in plain and "bicycle" in plain
    assert "Earlier in this conversation: They planned a picnic" in cut


async def test_forgetting_a_person_stops_the_extraction_in_progress(tmp_path, fake_openai):
    """Discord's /forget (Companion.forget_speaker) while their exchange is being extracted: nothing is stored after."""
    from companion.memory.manager import Exchange, _encode, saved_job_person

    fake_openai.extraction_reply = FACTS
    fake_openai.extraction_delay = 0.5
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    await comp.respond("My sister Ottilie visits", conversation_id="c", speaker_id="alice", speaker_name="Alice")
    await eventually(lambda: extraction_asked(fake_openai), what="the extraction request")  # it is in progress
    assert comp.memory.pending()
    removed, said = await comp.forget_speaker("alice")
    await comp.memory.drain(5)
    left = await comp.memory.store.list("alice", include_superseded=True)
    await comp.close()
    assert said == 1 and left == [] and comp.memory.extracted == 0
    assert saved_job_person(_encode(Exchange("bob", "c", "Bob", "hi", "hello"))) == "bob"
    assert saved_job_person("not json") is None


async def test_queued_extraction_survives_kill_9(tmp_path, fake_openai):
    """Work queued when the process is killed outright (no shutdown at all) is done at the next start."""
    import os
    import signal
    import sys

    fake_openai.extraction_reply = FACTS
    fake_openai.extraction_delay = 60  # the model is busy: the job stays queued
    cfg = config_file(tmp_path, fake_openai, "memory-on")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion", "--config", cfg, "chat", "-m", "My sister Ottilie visits", "--speaker", "alice",
        "--name", "Alice", "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    db = tmp_path / "data" / "memory.sqlite3"

    def queued_on_disk() -> bool:
        if not db.exists():
            return False
        with sqlite3.connect(db) as conn:
            try:
                return conn.execute("SELECT COUNT(*) FROM pending_work").fetchone()[0] > 0
            except sqlite3.OperationalError:
                return False

    try:
        await eventually(queued_on_disk, timeout=60, what="the queued extraction written to disk")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    # the CLI's config_file uses "data"
    assert await facts_after_restart(tmp_path, fake_openai, "data") == ["Alice's sister is called Ottilie."]


async def test_thousands_of_conversations_do_not_grow_the_summary_state(tmp_path, fake_openai):
    """Per-conversation lines kept for summaries stay bounded however many people talk (the least recent go)."""
    from companion.memory.manager import MAX_TRANSCRIPTS, Exchange

    fake_openai.extraction_delay = 60  # nothing is extracted meanwhile
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    try:
        for i in range(MAX_TRANSCRIPTS + 500):
            comp.memory.remember(Exchange(f"p{i}", f"chat-{i}", f"P{i}", "I like tea.", "Me too!"))
        assert len(comp.memory._transcripts) == MAX_TRANSCRIPTS
        assert f"chat-{MAX_TRANSCRIPTS + 499}" in comp.memory._transcripts and "chat-0" not in comp.memory._transcripts
    finally:
        await comp.close(memory_grace=0)


async def test_what_a_person_says_is_embedded_once_per_turn(tmp_path, fake_openai):
    """Recall and keeping their own words share one embedding of the message, so nothing embeds beside the model's read."""
    fake_openai.extraction_reply = '{"facts": []}'
    comp = build_companion(mem_settings(tmp_path, fake_openai))
    await comp.start()
    asked: list[str] = []
    model_embed = comp.memory.embedder._embed

    async def counting(texts):
        asked.extend(texts)
        return await model_embed(texts)

    comp.memory.embedder._embed = counting
    try:
        await comp.respond("My neighbour Marguerite grows giant pumpkins", conversation_id="a", speaker_id="alice")
        await comp.memory.drain()
        kept = [m.content for m in await comp.memory.store.list("alice") if m.kind == "episode"]
    finally:
        await comp.close()
    assert kept == ["My neighbour Marguerite grows giant pumpkins"]  # kept in their words, from the shared vector
    assert asked.count("My neighbour Marguerite grows giant pumpkins") == 1
