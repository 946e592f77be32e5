"""Thousands of different people through the engine, long-term memory and stream chat: what is kept per person stays bounded."""

import asyncio
import hashlib
import time

import numpy as np

import companion.memory.manager as manager_module
import companion.stream.chat as chat_module
from companion.app import build_memory
from companion.character.persona import default_character
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.memory.embed import Embedder
from companion.stream.chat import StreamChat
from companion.stream.message import ChatMessage
from companion.stream.prioritiser import MAX_TRACKED
from companion.testing import ScriptedLLM, eventually

PEOPLE = 2000
TRANSCRIPTS, VECTORS, ANSWERS = 100, 300, 50  # small bounds, so thousands of people go far past each


class WordHashEmbedder(Embedder):
    """Words hashed into 64 buckets: the same sentence finds itself, in microseconds (the real model is tested elsewhere)."""

    name = "word-hash"
    dim = 64

    async def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, hashlib.blake2b(word.encode(), digest_size=2).digest()[0] % self.dim] += 1.0
        return out + 1e-3


async def test_many_distinct_people_leave_bounded_state(settings_for, fake_openai, monkeypatch):
    """2,500 people each talking once (web, Discord, stream chat) leave no lock, transcript, vector or answer beyond its bound."""
    settings = settings_for(fake_openai)
    settings.stream.speak_up_after = 10_000
    settings.memory.enabled = True
    monkeypatch.setattr(manager_module, "MAX_TRANSCRIPTS", TRANSCRIPTS)
    monkeypatch.setattr(chat_module, "ANSWERS_KEPT", ANSWERS)
    llm = ScriptedLLM(["Nice to meet you! I like tea too."])
    character = default_character()
    comp = Companion(
        settings, llm=llm, character=character, history=HistoryStore(settings.data_path() / "history.sqlite3"),
        memory=build_memory(settings, llm, character),
    )
    assert comp.memory is not None
    comp.memory.embedder = WordHashEmbedder()
    comp.memory.store._cache.max_vectors = VECTORS
    await comp.start()
    chat = StreamChat(comp, settings)
    stop = asyncio.Event()
    answering = asyncio.create_task(chat.run(stop, quiet=lambda: asyncio.sleep(0)))
    started = time.monotonic()
    try:
        for i in range(PEOPLE):
            platform = ("web", "discord")[i % 2]
            await comp.respond(
                f"Hi, I'm person {i} and I like tea number {i}.", conversation_id=f"{platform}:{i}",
                speaker_id=f"{platform}:user{i}", speaker_name=f"Person{i}", platform=platform,
            )
            chat.ingest(ChatMessage("twitch", f"viewer{i}", f"Viewer{i}", f"hello from viewer {i}, what's up?"))
            if i % 50 == 49:  # someone from long ago comes back: their memories are read again
                back = i // 2 * 2
                await comp.respond(
                    "What do I like?", conversation_id=f"web:{back}", speaker_id=f"web:user{back}", speaker_name=f"Person{back}",
                    platform="web",
                )
            assert comp.floor.conversations() <= 1
        await comp.memory.drain()
        await eventually(lambda: len(chat.prioritiser) == 0 or len(chat.answers) >= ANSWERS, timeout=60, what="chat answered")
    finally:
        stop.set()
        await answering
        await comp.close(memory_grace=0)
    assert comp.floor.conversations() == 0  # no lock left for any of the 2,500 conversations
    assert len(comp.memory._transcripts) == TRANSCRIPTS  # the most recent conversations' lines, no more
    assert comp.memory.store._cache.vectors() <= VECTORS
    assert len(chat.answers) == ANSWERS
    assert len(chat.prioritiser._user_times) <= MAX_TRACKED and len(chat.prioritiser._seen) <= MAX_TRACKED
    print(f"{PEOPLE} people in {time.monotonic() - started:.1f} s")
