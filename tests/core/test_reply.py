"""One reply, one path: the reply handle speaks through each real output, is cut by barge-in, and keeps what was heard."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

import companion.games  # noqa: F401 - declares the "game" platform (heard, broadcast)
import companion.stream  # noqa: F401 - declares twitch, youtube and stream
from companion.character.persona import default_character
from companion.config import Settings
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.core.speech import Voice
from companion.llm.base import ToolCall
from companion.runtime.events import TurnEnded
from companion.testing import ScriptedLLM, eventually
from companion.tools.registry import Tool, ToolRegistry
from companion.voice.playback import PacedOutput, PlaybackBuffer, SpeakerOutput
from companion.voice.tts.base import TTS
from tests.adapters.discord.fakes import PacedVoiceClient

REPLY = " ".join(f"Here is part {n} of the long answer." for n in ("one", "two", "three", "four", "five", "six"))  # no six words in a row twice


class ToneTTS(TTS):
    """A fifth of a second of tone per word, at once: the test knows how long each sentence plays."""

    sample_rate = 16_000

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        n = int(0.2 * self.sample_rate * len(text.split()))
        yield (np.sin(np.arange(n) / 10) * 0.3).astype(np.float32)


class Heard:
    """What reached the listener's ears: (time, loudest sample) per block."""

    def __init__(self) -> None:
        self.blocks: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def note(self, peak: float) -> None:
        with self.lock:
            self.blocks.append((time.monotonic(), peak))

    def heard_for(self) -> float:
        """Seconds from the first sound to the latest block."""
        first = self.first_sound()
        with self.lock:
            return 0.0 if first is None or not self.blocks else self.blocks[-1][0] - first

    def first_sound(self) -> float | None:
        with self.lock:
            return next((t for t, peak in self.blocks if peak > 0.05), None)

    def last_sound(self) -> float | None:
        with self.lock:
            return next((t for t, peak in reversed(self.blocks) if peak > 0.05), None)


class FakeStream:
    """sounddevice.OutputStream's contract: the callback is called from another thread, one block per block time."""

    def __init__(self, *, samplerate: int, blocksize: int, callback: Any, heard: Heard, **_: Any) -> None:
        self.rate, self.block, self.callback, self.heard = samplerate, blocksize, callback, heard
        self.running = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        out = np.zeros((self.block, 1), np.float32)
        next_at = time.monotonic()
        while self.running:
            self.callback(out, self.block, None, None)
            self.heard.note(float(np.abs(out).max()))
            next_at += self.block / self.rate
            time.sleep(max(0.0, next_at - time.monotonic()))  # real time on purpose: a sound card's clock

    def start(self) -> None:
        self.running = True
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join()

    def close(self) -> None:
        pass


async def make_output(kind: str, heard: Heard, monkeypatch: pytest.MonkeyPatch) -> tuple[PlaybackBuffer, Any]:
    """A playback buffer and what plays it: the local speaker (fake device), the browser's paced stream, or Discord."""
    if kind == "local":
        import types

        import companion.voice.playback as playback

        fake_sd = types.SimpleNamespace(OutputStream=lambda **kw: FakeStream(heard=heard, **kw))
        monkeypatch.setattr(playback, "_sounddevice", lambda: fake_sd)
        buffer = PlaybackBuffer(16_000)
        speaker = SpeakerOutput(buffer)
        speaker.start()
        return buffer, speaker
    if kind == "browser":
        buffer = PlaybackBuffer(16_000)
        paced = PacedOutput(buffer, realtime=True, on_audio=lambda block: heard.note(float(np.abs(block).max())))
        paced.start()
        return buffer, paced
    from companion.adapters.discord.audio import VoiceBuffer
    from companion.adapters.discord.bot import GuildVoice

    voice_buffer = VoiceBuffer(48_000)
    GuildVoice(PacedVoiceClient(heard.note), voice_buffer)  # starts Discord's player whenever audio is pushed
    return voice_buffer, None


async def make_companion(tmp_path, llm: ScriptedLLM) -> Companion:
    settings = Settings.model_validate({"companion": {"data_dir": str(tmp_path)}, "memory": {"enabled": False}})
    companion = Companion(settings, llm=llm, character=default_character(), history=HistoryStore(tmp_path / "h.sqlite3"))
    await companion.start()
    return companion


OUTPUTS = ["local", "browser", "discord"]


@pytest.mark.parametrize("kind", OUTPUTS)
@pytest.mark.parametrize("tool_round", [False, True], ids=["plain", "tool-round"])
async def test_a_reply_is_heard_while_written_and_barge_in_keeps_the_heard_prefix(tmp_path, monkeypatch, kind, tool_round):
    """First audio before the model finishes; a barge-in silences the output within 200 ms; history holds what was heard."""
    heard = Heard()
    calls: list[str] = []
    if tool_round:
        script: list[Any] = [("Let me look that up.", ToolCall("call_1", "lookup", "{}")), REPLY]
    else:
        script = [REPLY]
    llm = ScriptedLLM(script, token_delay=0.04)  # about 2 s to write the whole reply
    companion = await make_companion(tmp_path, llm)
    if tool_round:
        async def lookup(args: dict[str, Any], ctx: Any) -> str:
            calls.append(ctx.conversation_id)
            return "found it"

        companion.tools = ToolRegistry()
        companion.tools.register(Tool("lookup", "Look something up", lookup))
    buffer, player = await make_output(kind, heard, monkeypatch)
    companion.voices.add(Voice(kind, buffer, ToneTTS(), owns="voice".__eq__))
    ended: list[float] = []
    companion.bus.subscribe(TurnEnded, lambda e: ended.append(time.monotonic()))
    try:
        handle = companion.reply("Tell me a long story.", conversation_id="voice", speaker_id="local", platform="voice")
        await eventually(lambda: heard.first_sound() is not None)
        assert not ended, "the first audio came only after the whole reply was written"
        if tool_round:
            await eventually(lambda: bool(calls))  # the barge-in lands in the second round, after the tool ran
        await eventually(lambda: heard.heard_for() >= 1.5, what="a second and a half of her reply")
        cut_at = time.monotonic()
        companion.voices.interrupt(buffer)  # what the pipeline does when the person starts talking
        result = await asyncio.wait_for(handle.wait(), 5)
        await asyncio.sleep(0.4)  # real time on purpose: the outputs play by the wall clock, and silence takes time to hear
        last = heard.last_sound()
        assert last is not None and last - cut_at < 0.2, f"audio went on {last - cut_at:.3f} s after the barge-in"
        assert result.interrupted and result.spoken
        stored = await companion.history.recent("voice", 5)
        assert stored[-1].role == "assistant" and stored[-1].interrupted
        assert stored[-1].content == result.spoken
        full = ("Let me look that up. " if tool_round else "") + REPLY
        assert full.startswith(stored[-1].content) and len(stored[-1].content) < len(full)  # a real prefix
        if tool_round:
            assert stored[-1].content.startswith("Let me look that up.") and calls == ["voice"]
    finally:
        await companion.close()
        if player is not None:
            await player.close()


async def test_text_only_callers_get_the_same_handle_without_audio(tmp_path):
    """A reply with no voice (web text, CLI) is written and stored whole; interrupt() stops the writing."""
    other = REPLY.replace("Here is part", "Now comes piece")  # a second reply that copies nothing from the first
    llm = ScriptedLLM([REPLY, other], token_delay=0.02)
    companion = await make_companion(tmp_path, llm)
    try:
        handle = companion.reply("hello", conversation_id="web:x", platform="web")
        assert handle.speech is None
        result = await handle.wait()
        assert result.reply == REPLY and not result.interrupted
        second = companion.reply("again", conversation_id="web:x", platform="web")
        await eventually(lambda: second.first_turn is not None and "first_token" in second.first_turn.marks)
        second.interrupt()
        cut = await second.wait()
        assert cut.interrupted and len(cut.reply) < len(other)
        stored = await companion.history.recent("web:x", 5)
        assert stored[-1].interrupted and stored[-1].content == cut.reply
    finally:
        await companion.close()


class CachingLLM(ScriptedLLM):
    """A scripted model that says it keeps a cache per conversation: the reply path reads its next prompt ahead."""

    prefills_ahead = True


async def test_after_a_reply_the_next_prompt_is_read_ahead_up_to_the_new_message(tmp_path):
    """Once a reply is stored, the model reads the next turn's prompt up to its new message, in the background and
    under the conversation's cache key: the next reply's prompt starts with exactly those messages."""
    llm = CachingLLM(["Pasta with lemon is quick.", ".", "Try a fruit salad."])
    companion = await make_companion(tmp_path, llm)
    try:
        first = await companion.reply("What should I cook tonight?", conversation_id="web:x", platform="web").wait()
        assert first.reply == "Pasta with lemon is quick."
        await eventually(lambda: len(llm.prompts) == 2, what="the read-ahead")
        ahead, options = llm.prompts[1], llm.options[1]
        assert ahead[-1] == {"role": "assistant", "content": "Pasta with lemon is quick."}  # the history as stored
        assert options.cache_key == llm.options[0].cache_key and options.max_tokens == 1
        await companion.reply("And for dessert?", conversation_id="web:x", platform="web").wait()
        following = llm.prompts[2]
        assert following[: len(ahead)] == ahead
        assert following[len(ahead)] == {"role": "user", "content": "And for dessert?"}
    finally:
        await companion.close()


async def test_memories_recalled_for_a_message_are_read_ahead_for_the_next_up_to_its_words(tmp_path):
    """After a reply whose message recalled memories, the read-ahead reads those memories as the next message's start and
    stops where its words will stand; the next message, recalling the same, begins with exactly what was read."""
    from companion.app import build_memory
    from companion.core.reply import NEXT_WORDS

    settings = Settings.model_validate({"companion": {"data_dir": str(tmp_path)}, "memory": {"extract": False}})
    llm = CachingLLM(["Pepper sounds lovely.", ".", "Pepper is a lovely name.", ".", "I remember Pepper.", "."])
    character = default_character()
    companion = Companion(
        settings, llm=llm, character=character, history=HistoryStore(tmp_path / "h.sqlite3"),
        memory=build_memory(settings, llm, character),
    )
    await companion.start()
    try:
        # told in another chat: this one's history does not show it, so the memory note brings it
        await companion.respond("My cat is called Pepper and she is black and white.", conversation_id="web:a", platform="web")
        await companion.memory.drain()  # their words are kept: the next messages recall them
        await eventually(lambda: len(llm.prompts) == 2, what="the first read-ahead")
        await companion.respond("Do you remember my cat?", conversation_id="web:x", platform="web")
        await eventually(lambda: len(llm.prompts) == 4, what="the read-ahead with memories")
        ahead, options = llm.prompts[3], llm.options[3]
        assert options.read_to == NEXT_WORDS and options.cache_key == llm.options[2].cache_key
        noted = ahead[-1]["content"]
        assert "My cat is called Pepper" in noted and noted.endswith("\n\n" + NEXT_WORDS)
        await companion.respond("What colour is my cat?", conversation_id="web:x", platform="web")
        following = llm.prompts[4]
        assert following[: len(ahead) - 1] == ahead[:-1]  # the history as read ahead
        assert following[len(ahead) - 1]["content"] == noted.replace(NEXT_WORDS, "What colour is my cat?")
    finally:
        await companion.close()


async def test_audience_replies_are_spoken_on_every_broadcasting_voice_and_only_there(tmp_path):
    """Stream answers and game commentary reach every voice that broadcasts; a private conversation only its own."""
    llm = ScriptedLLM(["Hi chat."])
    companion = await make_companion(tmp_path, llm)
    speaker, browser, private = PlaybackBuffer(16_000), PlaybackBuffer(16_000), PlaybackBuffer(16_000)
    outputs = [PacedOutput(b, realtime=False) for b in (speaker, browser, private)]
    for output in outputs:
        output.start()
    tts = ToneTTS()
    companion.voices.add(Voice("speaker", speaker, tts, owns="voice".__eq__))
    page = Voice("browser", browser, tts, owns="web-voice:a".__eq__)
    companion.voices.add(page)
    companion.voices.add(Voice("discord-listener", private, tts, owns="discord-voice:1".__eq__, broadcast=False))
    try:
        await companion.respond("hello", conversation_id="stream:twitch", speaker_id="twitch:bob", platform="twitch")
        assert speaker.spoken_text() == browser.spoken_text() == "Hi chat." and private.spoken_text() == ""
        await companion.respond("what do you see", conversation_id="game:chess", speaker_id="game", platform="game")
        assert speaker.spoken_text() == "Hi chat." and private.spoken_text() == ""
        await companion.respond("psst", conversation_id="web-voice:a", platform="voice")
        assert browser.spoken_text() == "Hi chat." and speaker.samples_played < browser.samples_played  # only the browser spoke it
        before = [b.samples_played for b in (speaker, browser, private)]
        await companion.respond("typed", conversation_id="web:a", platform="web")  # a text chat is not spoken anywhere
        assert [b.samples_played for b in (speaker, browser, private)] == before
        page.muted = True  # the page's mute button: it is left out
        await companion.respond("hello again", conversation_id="stream:twitch", speaker_id="twitch:bob", platform="twitch")
        assert browser.samples_played == before[1] and speaker.samples_played > before[0]
    finally:
        await companion.close()
        for output in outputs:
            await output.close()


async def test_an_announcement_published_by_a_plugin_is_spoken_on_every_voice(tmp_path):
    """A timer or reminder that only publishes an Announcement is still heard on each broadcasting voice."""
    from companion.runtime.events import Announcement

    companion = await make_companion(tmp_path, ScriptedLLM())
    speaker, browser = PlaybackBuffer(16_000), PlaybackBuffer(16_000)
    outputs = [PacedOutput(b, realtime=False) for b in (speaker, browser)]
    for output in outputs:
        output.start()
    companion.voices.add(Voice("speaker", speaker, ToneTTS(), owns="voice".__eq__))
    companion.voices.add(Voice("browser", browser, ToneTTS(), owns="web-voice:a".__eq__))
    try:
        companion.bus.publish(Announcement("chat-1", "Your tea is done!"))
        await eventually(lambda: speaker.spoken_text() == browser.spoken_text() == "Your tea is done!")
    finally:
        await companion.close()
        for output in outputs:
            await output.close()


def test_the_history_budget_follows_the_model_unless_the_user_chose():
    """The history follows what the model reads here (long on a GPU, short for a slow big model); a history_tokens the user set always wins."""
    from companion.config import Settings
    from companion.core.reply import history_budget

    default = Settings()
    assert history_budget(default, None) == default.llm.history_tokens  # CPU, or a server: the default
    assert history_budget(default, 10_922) == 10_922  # a 32k model on a GPU: a third of its window
    assert history_budget(default, 900) == 900  # a 7B model on two cores: what it reads in a few seconds
    chosen = Settings.model_validate({"llm": {"history_tokens": 800}})
    assert history_budget(chosen, 10_922) == 800
