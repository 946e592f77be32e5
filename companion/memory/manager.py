"""Memory in the conversation: recall before a reply, extraction after it, forgetting on request.

Extraction uses the same LLM as the conversation, so it must never make a
person wait: its model calls go through the scheduler at BACKGROUND
priority (they start only when nothing more urgent runs and are preempted
the moment something does), and a reply that starts meanwhile cancels it;
either way the exchange stays queued and is retried later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from ..llm.base import LLM, GenerationOptions, LLMError, LLMPreempted, Priority
from .embed import Embedder, EmbeddingError
from .extract import EXTRACTION_SCHEMA, extraction_messages, forget_intent, parse_extraction, render_memories
from .store import SELF, MemoryStore

log = logging.getLogger(__name__)

__all__ = ["MemoryManager", "Exchange"]

DUPLICATE_SIMILARITY = 0.95  # a new fact this close to a stored one is the same memory said again


@dataclass(frozen=True, slots=True)
class Exchange:
    person_id: str
    conversation_id: str
    speaker_name: str
    user_text: str
    reply: str


@dataclass(frozen=True, slots=True)
class SummaryJob:
    """Summarise the last stretch of a long conversation into one memory."""

    person_id: str
    conversation_id: str
    messages: tuple[str, ...]


class MemoryManager:
    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        llm: LLM | None,
        *,
        character: str,
        recall_k: int = 6,
        budget_chars: int = 1200,
        extract: bool = True,
        summary_every: int = 20,
        max_queue: int = 200,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.character = character
        self.recall_k = recall_k
        self.budget_chars = budget_chars
        self.extract_enabled = extract and llm is not None
        self.summary_every = summary_every
        self._queue: deque[Exchange | SummaryJob] = deque(maxlen=max_queue)  # bounded: oldest dropped under a flood
        self._transcripts: dict[str, list[str]] = {}  # conversation -> lines since its last summary
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy_turns = 0
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self.extracted = 0  # facts stored since start (for tests, logs)

    async def start(self) -> None:
        await self.store.open()
        await self.embedder.start()
        pruned = await self.store.prune()
        if pruned:
            log.info("memory: pruned %d faded memories", pruned)
        if self.extract_enabled:
            self._worker = asyncio.create_task(self._work(), name="memory-extraction")

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        await self.embedder.close()
        await self.store.close()

    # -- before a reply ---------------------------------------------------------

    def turn_started(self) -> None:
        """A reply is being written: extraction yields the LLM at once."""
        self._busy_turns += 1
        self._idle.clear()
        if self._current is not None and not self._current.done():
            self._current.cancel()

    def turn_ended(self) -> None:
        self._busy_turns = max(0, self._busy_turns - 1)
        if self._busy_turns == 0:
            self._idle.set()

    async def prepare(
        self, speaker_id: str, text: str, *, conversation_id: str, platform: str = "", speaker_name: str = ""
    ) -> tuple[str, str | None, str]:
        """(person id, forget intent or None, memory block for the prompt)."""
        person = await self.store.person_for(speaker_id, platform=platform, display_name=speaker_name)
        intent = forget_intent(text)
        if intent == "all":
            removed = await self.store.forget_person(person)
            self._drop_queued(person)
            log.info("memory: forgot everything about %s (%d memories) on request", person, removed)
            return person, intent, ""
        if intent == "last":
            import time

            recent = await self.store.recent(person, conversation_id=conversation_id, since=time.time() - 900)
            await self.store.forget([m.id for m in recent])
            self._drop_queued(person, conversation_id)
            log.info("memory: forgot %d recent memories of %s on request", len(recent), person)
        try:
            query = (await self.embedder.embed([text]))[0]
        except EmbeddingError as exc:
            log.warning("memory: recall skipped: %s", exc)
            return person, intent, ""
        about_user = await self.store.recall([person], query, k=self.recall_k)
        about_self = await self.store.recall([SELF], query, k=max(1, self.recall_k // 3))
        block = render_memories(
            self.character,
            speaker_name or speaker_id,
            [r.memory.content for r in about_user],
            [r.memory.content for r in about_self],
            self.budget_chars,
        )
        return person, intent, block

    # -- after a reply ----------------------------------------------------------

    def remember(self, exchange: Exchange) -> None:
        """Queue an exchange for background extraction."""
        if not self.extract_enabled or not exchange.reply.strip():
            return
        self._queue.append(exchange)
        if self.summary_every > 0:
            lines = self._transcripts.setdefault(exchange.conversation_id, [])
            lines += [f"{exchange.speaker_name}: {exchange.user_text}", f"{self.character}: {exchange.reply}"]
            if len(lines) >= self.summary_every:
                self._queue.append(SummaryJob(exchange.person_id, exchange.conversation_id, tuple(lines)))
                self._transcripts[exchange.conversation_id] = []
        self._wake.set()

    def _drop_queued(self, person: str, conversation_id: str | None = None) -> None:
        kept = [e for e in self._queue if not (e.person_id == person and conversation_id in (None, e.conversation_id))]
        self._queue.clear()
        self._queue.extend(kept)
        for conversation in [conversation_id] if conversation_id else list(self._transcripts):
            self._transcripts.pop(conversation, None)

    def pending(self) -> bool:
        """True while exchanges wait for extraction or one is being extracted."""
        return bool(self._queue) or (self._current is not None and not self._current.done())

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until queued extraction is done (tests, shutdown of scripted runs)."""
        async with asyncio.timeout(timeout):
            while self.pending():
                await asyncio.sleep(0.02)

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await self._idle.wait()
            if not self._queue:
                continue
            exchange = self._queue[0]
            job = self._summarise(exchange) if isinstance(exchange, SummaryJob) else self._extract(exchange)
            self._current = asyncio.create_task(job)
            try:
                await self._current
                if self._queue and self._queue[0] is exchange:
                    self._queue.popleft()
            except asyncio.CancelledError:
                if self._worker is not None and self._worker.cancelling():
                    raise
                # a reply started: keep the exchange queued and try again when idle
            except LLMPreempted:
                pass  # more urgent model work arrived (a game action, say): keep it queued, retry when free
            except Exception:  # one bad exchange must not stop memory for good
                log.exception("memory extraction failed")
                if self._queue and self._queue[0] is exchange:
                    self._queue.popleft()

    async def _summarise(self, job: SummaryJob) -> None:
        assert self.llm is not None
        messages = [
            {
                "role": "system",
                "content": f"Summarise this part of a conversation of {self.character} in two or three sentences, "
                "third person, keeping names, plans and feelings worth remembering later. Plain text only.",
            },
            {"role": "user", "content": "\n".join(job.messages)[-6000:]},
        ]
        try:
            options = GenerationOptions(max_tokens=160, temperature=0.3, priority=Priority.BACKGROUND)
            text = "".join([c.text async for c in self.llm.stream(messages, options)])
        except LLMPreempted:
            raise
        except LLMError as exc:
            log.warning("memory summary skipped: %s", exc)
            return
        summary = text.strip()
        if len(summary) < 10:
            return
        vector = (await self.embedder.embed([summary]))[0]
        await self.store.add(job.person_id, summary, vector, kind="summary", importance=0.4, conversation_id=job.conversation_id)
        log.info("memory: summarised %d lines of %s", len(job.messages), job.conversation_id)

    async def _extract(self, exchange: Exchange) -> None:
        assert self.llm is not None
        messages = extraction_messages(self.character, exchange.speaker_name, exchange.user_text, exchange.reply)
        options = GenerationOptions(
            max_tokens=200,
            temperature=0.2,
            response_format={"type": "json_schema", "json_schema": {"name": "memories", "schema": EXTRACTION_SCHEMA}},
            priority=Priority.BACKGROUND,
        )
        try:
            text = "".join([c.text async for c in self.llm.stream(messages, options)])
        except LLMPreempted:
            raise
        except LLMError as exc:
            log.warning("memory extraction skipped: %s", exc)
            return
        facts = parse_extraction(text)
        if not facts:
            return
        vectors = await self.embedder.embed([f.fact for f in facts])
        stored = 0
        for fact, vector in zip(facts, vectors):
            person = exchange.person_id if fact.about == "user" else SELF
            nearest = await self.store.recall([person], vector, k=4, refresh=False)
            same = [r.memory.id for r in nearest if r.similarity >= DUPLICATE_SIMILARITY]
            if same:
                await self.store.touch(same)  # said again: it matters, keep it fresh
                continue
            await self.store.add(
                person,
                fact.fact,
                vector,
                kind="fact" if fact.about == "user" else "self",
                subject=fact.subject,
                importance=fact.importance,
                conversation_id=exchange.conversation_id,
            )
            self.extracted += 1
            stored += 1
        log.info("memory: %d new fact(s) from %s", stored, exchange.conversation_id)
