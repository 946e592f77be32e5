"""Voice through the browser: PCM from the page's microphone in, the reply's audio streamed back out.

One session per websocket. The page sends 16 kHz mono int16 PCM as binary
frames (push-to-talk or hands-free: the server's VAD decides when a turn
ends); the reply comes back as binary int16 frames at the TTS's rate, paced in
real time so barge-in can cut it, plus JSON events for captions, transcripts
and per-turn timings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.config import is_loopback
from companion.core.speech import Voice
from companion.runtime.events import BargedIn, Event, SentenceReady, Transcript, TurnStarted, VoiceTimings
from companion.runtime.tasks import spawn
from companion.voice.build import VoiceModels  # re-exported: the web voice used to own it

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion

log = logging.getLogger(__name__)

__all__ = ["BrowserVoice", "VoiceModels"]

SendJson = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
SendBytes = Callable[[bytes], Awaitable[None]]


class BrowserVoice:
    def __init__(
        self, companion: "Companion", settings: "Settings", models: VoiceModels, conversation: str, send_json: SendJson, send_bytes: SendBytes,
        cast: Any = None,
    ) -> None:
        self.cast = cast  # [[characters]]: what this page says is answered by the group
        self.processing: dict[str, bool] = {}  # what the page's browser does to the microphone (echo cancellation...)
        self.companion = companion
        self.settings = settings
        self.models = models
        self.conversation = conversation
        self.send_json = send_json
        self.send_bytes = send_bytes
        self.source: Any = None
        self.pipeline: Any = None
        self.output: Any = None
        self._muted = False
        self.voice: Voice | None = None
        self._task: asyncio.Task[None] | None = None
        self._turns: set[str] = set()
        self._unsubscribe: list[Any] = []

    async def start(self) -> None:
        from companion.voice.build import build_pipeline
        from companion.voice.playback import PacedOutput, PlaybackBuffer
        from companion.voice.sources import QueueSource

        stt, tts = await self.models.get()
        buffer = PlaybackBuffer(tts.sample_rate, level=self.companion.audio_level)
        self.output = PacedOutput(buffer, realtime=True, on_audio=self._audio_out)
        self.output.start()
        self.source = QueueSource()
        self.pipeline = build_pipeline(self.companion, self.settings, stt=stt, tts=tts, buffer=buffer,
                                       conversation_id=self.conversation, speaker_id="web",
                                       speaker_name=self.settings.owner_display_name() if is_loopback(self.settings.web.host) else None,
                                       cast=self.cast)
        bus = self.companion.bus
        self._unsubscribe = [bus.subscribe(kind, self._on_event) for kind in (Transcript, VoiceTimings, BargedIn, TurnStarted, SentenceReady)]
        # This page hears its own conversation and what is said to the audience (the router decides).
        self.voice = Voice(f"browser:{self.conversation}", buffer, tts, owns=self.conversation.__eq__, broadcast=True, muted=self._muted)
        self._unsubscribe.append(self.companion.voices.add(self.voice))
        self._task = asyncio.create_task(self.pipeline.run(self.source), name=f"browser-voice-{self.conversation}")
        await self.send_json({"type": "audio_format", "rate": tts.sample_rate, "encoding": "s16le", "channels": 1})

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, on: bool) -> None:
        """A muted page gets no speech at all: the router leaves it out, so nothing waits on its playback."""
        self._muted = on
        if self.voice is not None:
            self.voice.muted = on

    def feed(self, pcm: bytes) -> None:
        if self.source is not None and len(pcm) >= 2:
            self.source.feed(np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2"))

    def end_of_speech(self) -> None:
        """Push-to-talk released: a short silence lets the turn policy end the turn at once."""
        if self.source is not None:
            self.source.feed(np.zeros(int(0.5 * 16000), dtype=np.int16))

    def stop_reply(self) -> None:
        if self.pipeline is not None:
            self.pipeline.interrupt_reply()

    async def _audio_out(self, block: np.ndarray) -> None:
        if not self.muted:
            await self.send_bytes((np.clip(block, -1, 1) * 32767).astype("<i2").tobytes())

    def _on_event(self, event: Event) -> None:
        message: dict[str, Any] | None = None
        if isinstance(event, Transcript) and event.conversation_id == self.conversation:
            message = {"type": "transcript", "text": event.text, "final": event.final}
        elif isinstance(event, TurnStarted) and event.conversation_id == self.conversation:
            self._turns.add(event.turn_id)
            message = {"type": "turn_start", "turn_id": event.turn_id, "voice": True}
        elif isinstance(event, SentenceReady) and event.turn_id in self._turns:
            message = {"type": "caption", "turn_id": event.turn_id, "text": event.text, "emotions": list(event.emotions)}
        elif isinstance(event, VoiceTimings) and event.conversation_id == self.conversation:
            self._turns.discard(event.turn_id)
            message = {"type": "voice_timings", "turn_id": event.turn_id, "timings": event.timings}
        elif isinstance(event, BargedIn) and event.conversation_id == self.conversation:
            message = {"type": "audio_clear", "heard": event.heard}
        if message is not None:
            spawn(self.send_json(message), "web-voice-event")

    async def close(self) -> None:
        for undo in self._unsubscribe:
            undo()
        if self.source is not None:
            self.source.close()
        if self.pipeline is not None:
            self.pipeline.interrupt_reply()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self.output is not None:
            await self.output.close()
