"""Memory in the conversation: recall before a reply, extraction after it, forgetting on request.

Extraction uses the same LLM as the conversation, so it must never make a
person wait: its model calls go through the scheduler at BACKGROUND
priority (they start only when nothing more urgent runs and are preempted
the moment something does), and a reply that starts meanwhile cancels it;
either way the exchange stays queued and is retried later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Collection
from dataclasses import asdict, dataclass

from companion.llm.base import LLM, GenerationOptions, LLMError, LLMPreempted, Priority
from companion.memory.embed import Embedder, EmbeddingError
from companion.memory.episodes import age_words, content_words, grounded, is_change, topic_key, worth_remembering
from companion.memory.extract import EXTRACTION_SCHEMA, extraction_messages, forget_intent, forget_topic, parse_extraction, render_memories
from companion.memory.store import SELF, Memory, MemoryStore, Recalled

log = logging.getLogger(__name__)

MAX_TRANSCRIPTS = 1000  # conversations whose lines since their last summary are kept

__all__ = ["MemoryManager", "Exchange"]

DUPLICATE_SIMILARITY = 0.95  # a new fact this close to a stored one is the same memory said again
SAME_TOPIC_SIMILARITY = 0.6  # two statements on one named topic this close: the newer replaces the older
CHANGE_SIMILARITY = 0.55  # "...now..." this close to an older statement replaces it even without a named topic
FORGET_SIMILARITY = 0.5  # "forget my allergy": memories this close to "allergy" go too


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
        strict: bool = False,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.llm = llm
        self.character = character
        self.recall_k = recall_k
        self.budget_chars = budget_chars
        self.extract_enabled = extract and llm is not None
        self.summary_every = summary_every
        # Strict: the model is too small to judge what it learnt about itself; keep only what people said.
        self.strict = strict
        self._episodes: dict[asyncio.Task[None], str] = {}  # words being stored -> whose
        self._queue: deque[Exchange | SummaryJob] = deque(maxlen=max_queue)  # bounded: oldest dropped under a flood
        # conversation -> lines since its last summary; the least recently active go first past MAX_TRANSCRIPTS
        self._transcripts: OrderedDict[str, list[str]] = OrderedDict()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy_turns = 0
        self._worker: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self.extracted = 0  # facts stored since start (for tests, logs)
        self._journal: asyncio.Task[None] | None = None  # writes the queue to disk after each change
        self._dirty = False
        self._journal_failed = False
        self._encoded: dict[int, tuple[Exchange | SummaryJob, str]] = {}  # id(job) -> (job, its saved form)

    async def start(self) -> None:
        await self.store.open()
        await self.embedder.start()
        pruned = await self.store.prune()
        if pruned:
            log.info("memory: pruned %d faded memories", pruned)
        saved = [_decode(p) for p in await self.store.take_pending()]
        if saved and self.extract_enabled:
            self._queue.extend(j for j in saved if j is not None)
            log.info("memory: resuming %d job(s) queued before the last shutdown", len(self._queue))
            self._journal_changed()  # taken from the table: written back at once, in case this process dies too
        if self.extract_enabled:
            self._worker = asyncio.create_task(self._work(), name="memory-extraction")
            if self._queue:
                self._wake.set()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        if self._journal is not None:
            await asyncio.gather(self._journal, return_exceptions=True)
        if self._episodes:
            await asyncio.gather(*self._episodes, return_exceptions=True)
        try:
            # What was not extracted yet (the job in progress included) is done at the next start.
            await self.store.save_pending(self._payloads())
            if self._queue:
                log.info("memory: %d job(s) saved for the next start", len(self._queue))
        except Exception as exc:  # noqa: BLE001 - closing must go on
            log.warning("memory: could not save queued work: %s", exc)
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
        self,
        speaker_id: str,
        text: str,
        *,
        conversation_id: str,
        platform: str = "",
        speaker_name: str = "",
        earlier: bool = False,
        recalled: list[tuple[str, float]] | None = None,
        shown: Collection[str] = (),
    ) -> tuple[str, str | None, str]:
        """(person id, forget intent or None, memory block for the prompt).

        ``recalled``, when given, receives their own remembered sentences with their similarity to ``text``,
        best first (``grounding.opening_for`` answers a question about them from it).
        ``shown``: what the prompt's history already shows them saying. Their words recalled from it are not
        quoted again in the block: the model would read them twice (a small one then repeats them), and each
        such line costs the reply its reading time on every turn.
        """
        person = await self.store.person_for(speaker_id, platform=platform, display_name=speaker_name)
        intent = forget_intent(text)
        if intent == "all":
            removed = await self.forget_person(person)
            log.info("memory: forgot everything about %s (%d memories) on request", person, removed)
            return person, intent, ""
        if intent == "last":
            recent = await self.store.recent(person, conversation_id=conversation_id, since=time.time() - 900)
            await self.store.forget([m.id for m in recent])
            self._drop_queued(person, conversation_id)
            self.embedder.clear_recent()
            log.info("memory: forgot %d recent memories of %s on request", len(recent), person)
        try:
            query = (await self.embedder.embed([text]))[0]
        except EmbeddingError as exc:
            log.warning("memory: recall skipped: %s", exc)
            return person, intent, ""
        if intent == "topic":
            removed = await self.forget_topic(person, forget_topic(text) or "")
            log.info("memory: forgot %d memories of %s about %r on request", removed, person, forget_topic(text))
        about_user = await self.store.recall([person], query, k=self.recall_k)
        about_self = await self.store.recall([SELF], query, k=max(1, self.recall_k // 3))
        if recalled is not None:
            recalled.extend(
                (r.memory.content, r.similarity)
                for r in sorted(about_user, key=lambda r: r.similarity, reverse=True)
                if r.memory.kind == "episode"
            )
        name = speaker_name or speaker_id
        visible = {" ".join(t.split())[:400] for t in shown}  # as _store_episode keeps them
        about_user = [r for r in about_user if not (r.memory.kind == "episode" and r.memory.content in visible)]
        lines = [self._line(m, name) for m in _newest_first(about_user, self.budget_chars)]
        if earlier:  # the prompt's history no longer reaches the start: the latest summary stands in for it
            summary = await self.store.latest(person, kind="summary", conversation_id=conversation_id)
            if summary is not None and all(summary.content not in line for line in lines):
                lines.append(f"Earlier in this conversation: {summary.content}")
        block = render_memories(
            self.character,
            name,
            lines,
            [self._line(m, self.character) for m in _newest_first(about_self, self.budget_chars // 3)],
            self.budget_chars,
        )
        return person, intent, block

    @staticmethod
    def _line(memory: Memory, name: str) -> str:
        """Short and attributed: a small model reads "Robin said yesterday: ..." better than a bare sentence."""
        if memory.kind == "episode":
            return f'{name} said {age_words(memory.created_at)}: "{memory.content}"'
        return memory.content

    def _cancel_work_for(self, person: str) -> None:
        """Drop ``person``'s queued jobs and stop the one being extracted, so nothing about them is stored after."""
        for task, whose in list(self._episodes.items()):
            if whose == person:
                task.cancel()  # their own words, still being embedded
        if self._current is not None and not self._current.done() and self._queue and self._queue[0].person_id == person:
            self._current.cancel()  # checked before dropping: the job in progress is the queue's head
        self._drop_queued(person)

    async def forget_person(self, person: str) -> int:
        """Everything about ``person``: memories (words and facts, superseded ones too) and work queued for them."""
        self._cancel_work_for(person)
        self.embedder.clear_recent()  # their recent words, kept with their vectors, go too
        return await self.store.forget_person(person)

    async def forget_topic(self, person: str, topic: str) -> int:
        """Memories of ``person`` about ``topic`` (facts and their own words), and their queued extraction."""
        self._cancel_work_for(person)
        self.embedder.clear_recent()
        words = content_words(topic)
        if not words:
            return 0
        vector = (await self.embedder.embed([topic]))[0]
        close = await self.store.recall([person], vector, k=50, refresh=False)
        stems = {w[:5] for w in words}
        doomed = [
            r.memory.id
            for r in close
            if r.similarity >= FORGET_SIMILARITY or stems & {w[:5] for w in content_words(r.memory.content)}
        ]
        return await self.store.forget(doomed)

    # -- after a reply ----------------------------------------------------------

    def heard(self, person_id: str, conversation_id: str, text: str) -> None:
        """Keep what a person said in their own words (episodic memory); no model involved, so it works with any."""
        if not worth_remembering(text):
            return
        task = asyncio.create_task(self._store_episode(person_id, conversation_id, text), name="memory-episode")
        self._episodes[task] = person_id
        task.add_done_callback(self._episode_done)

    def _episode_done(self, task: asyncio.Task[None]) -> None:
        self._episodes.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("memory: could not store what was said: %s", task.exception())

    async def _store_episode(self, person: str, conversation_id: str, text: str) -> None:
        text = " ".join(text.split())[:400]
        vector = (await self.embedder.embed([text]))[0]
        nearest = await self.store.recall([person], vector, k=8, refresh=False)
        same = [r.memory.id for r in nearest if r.memory.kind == "episode" and r.similarity >= DUPLICATE_SIMILARITY]
        if same:
            await self.store.touch(same)
            return
        older = [r.memory.id for r in nearest if _replaces(text, r)]
        await self.store.add(person, text, vector, kind="episode", importance=0.5, conversation_id=conversation_id, supersedes=older)
        if older:
            log.info("memory: %s said something newer on the same topic; %d older item(s) superseded", person, len(older))

    def remember(self, exchange: Exchange) -> None:
        """Queue an exchange for background extraction."""
        if not self.extract_enabled or not exchange.reply.strip():
            return
        self._queue.append(exchange)
        if self.summary_every > 0:
            lines = self._transcripts.setdefault(exchange.conversation_id, [])
            self._transcripts.move_to_end(exchange.conversation_id)
            while len(self._transcripts) > MAX_TRANSCRIPTS:  # thousands of people a day: keep the active ones
                self._transcripts.popitem(last=False)
            lines += [f"{exchange.speaker_name}: {exchange.user_text}", f"{self.character}: {exchange.reply}"]
            if len(lines) >= self.summary_every:
                self._queue.append(SummaryJob(exchange.person_id, exchange.conversation_id, tuple(lines)))
                self._transcripts[exchange.conversation_id] = []
        self._journal_changed()
        self._wake.set()

    def _journal_changed(self) -> None:
        """The queue changed: write it to the database soon (coalesced), so a crash or kill -9 loses none of it."""
        self._dirty = True
        if self._journal is None or self._journal.done():
            self._journal = asyncio.get_running_loop().create_task(self._write_journal(), name="memory-journal")

    def _payloads(self) -> list[str]:
        """The queue as saved; each job is encoded once (a full queue is written after every turn under a flood)."""
        encoded = {id(job): pair for job in self._queue if (pair := self._encoded.get(id(job))) and pair[0] is job}
        for job in self._queue:
            if id(job) not in encoded:
                encoded[id(job)] = (job, _encode(job))  # holding the job keeps its id from being reused meanwhile
        self._encoded = encoded
        return [encoded[id(job)][1] for job in self._queue]

    async def _write_journal(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.store.save_pending(self._payloads())
            except Exception as exc:  # noqa: BLE001 - the queue is still in memory; saved again at shutdown
                if not self._journal_failed:
                    log.warning("memory: could not write queued work to disk: %s", exc)
                self._journal_failed = True

    def _drop_queued(self, person: str, conversation_id: str | None = None) -> None:
        kept = [e for e in self._queue if not (e.person_id == person and conversation_id in (None, e.conversation_id))]
        self._queue.clear()
        self._queue.extend(kept)
        self._journal_changed()
        for conversation in [conversation_id] if conversation_id else list(self._transcripts):
            self._transcripts.pop(conversation, None)

    def pending(self) -> bool:
        """True while exchanges wait for extraction, one is being extracted or words are being stored."""
        return bool(self._queue) or bool(self._episodes) or (self._current is not None and not self._current.done())

    async def settle(self, timeout: float) -> None:
        """Let the job in progress and words being stored finish, within ``timeout`` (shutdown of `companion run`:
        the queue itself is already in the database and is done at the next start)."""
        running = [t for t in (self._current, *self._episodes) if t is not None and not t.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)

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
                    self._journal_changed()
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
                    self._journal_changed()

    async def _summarise(self, job: SummaryJob) -> None:
        """A few sentences about the last stretch of a conversation: recalled by meaning later, and shown
        while the prompt's history no longer reaches back that far (the rolling summary)."""
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
        names = (exchange.speaker_name, self.character, "user")
        facts = [
            f for f in parse_extraction(text)
            # only what the person actually said; the character's own memories only from a capable model
            if (f.about == "user" and grounded(f.fact, exchange.user_text, names)) or (f.about == "self" and not self.strict)
        ]
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


def _replaces(text: str, older: Recalled) -> bool:
    """Does a new statement replace an older memory (same named topic, or a change said outright)?"""
    memory = older.memory
    if memory.kind not in ("episode", "fact"):
        return False
    change = is_change(text)
    topic = topic_key(text)
    if topic:
        same_topic = topic_key(memory.content) == topic or all(w in memory.content.lower() for w in topic.split())
        if same_topic and (change or older.similarity >= SAME_TOPIC_SIMILARITY):
            return True
    return change and older.similarity >= CHANGE_SIMILARITY


def _newest_first(recalled: list[Recalled], budget_chars: int) -> list[Memory]:
    """The best memories that fit the budget, shown newest first (the newer of two statements reads as current)."""
    picked: list[Memory] = []
    used = 0
    for r in recalled:
        if used + len(r.memory.content) > budget_chars:
            break
        picked.append(r.memory)
        used += len(r.memory.content) + 40
    return sorted(picked, key=lambda m: m.created_at, reverse=True)


def saved_job_person(payload: str) -> str | None:
    """Whose saved job this is (for forgetting a person while the companion is not running)."""
    job = _decode(payload)
    return job.person_id if job is not None else None


def _encode(job: "Exchange | SummaryJob") -> str:
    return json.dumps({"type": type(job).__name__, **asdict(job)})


def _decode(payload: str) -> "Exchange | SummaryJob | None":
    try:
        data = json.loads(payload)
        kind = data.pop("type")
        if kind == "SummaryJob":
            data["messages"] = tuple(data["messages"])
            return SummaryJob(**data)
        return Exchange(**data)
    except (ValueError, KeyError, TypeError):
        log.warning("memory: a saved job could not be read; it is skipped")
        return None
