"""EXPERIMENTAL: listening in Discord voice channels (``[discord] experimental_voice_receive``).

discord.py does not receive audio. ``discord-ext-voice-recv`` (0.5.x, the only
released receiver) removes the transport encryption but not DAVE, the
end-to-end encryption Discord requires since March 2026, so the Opus it hands
over is still encrypted. Its open pull requests add a ``dave_session.decrypt``
step; we do the same here: ask for Opus (``wants_opus``), decrypt it with the
voice connection's davey session, decode it to PCM, and feed one voice
pipeline per speaker. Nothing here can be tested against Discord offline, so
it stays behind the flag; everything else works without it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.voice.sources import QueueSource

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion
    from companion.voice.build import VoiceModels
    from companion.voice.playback import PlaybackBuffer

log = logging.getLogger(__name__)


def receive_client_class() -> Any:
    try:
        from discord.ext import voice_recv  # type: ignore[attr-defined]
    except ImportError:
        raise RuntimeError("experimental voice receive needs discord-ext-voice-recv: pip install discord-ext-voice-recv") from None
    return voice_recv.VoiceRecvClient


class Listener:
    """Per-speaker pipelines fed from the voice connection (decrypted, decoded, 16 kHz mono).

    It knows the voice connection and the guild's playback buffer, not the bot: replies go to that
    buffer through the companion's voice router, like every other voice.
    """

    def __init__(
        self, companion: "Companion", settings: "Settings", models: "VoiceModels", client: Any, buffer: "PlaybackBuffer", channel: Any
    ) -> None:
        self.companion = companion
        self.settings = settings
        self.models = models
        self.client = client
        self.buffer = buffer
        self.channel = channel
        self.loop = asyncio.get_running_loop()
        self.sources: dict[int, QueueSource] = {}
        self.tasks: list[asyncio.Task[Any]] = []
        self.failures = 0
        self._decoders: dict[int, Any] = {}

    def pcm_from_packet(self, user_id: int, opus: bytes) -> np.ndarray | None:
        import davey
        import discord.opus

        dave = getattr(getattr(self.client, "_connection", None), "dave_session", None)
        if dave is not None and getattr(dave, "ready", False) and not dave.can_passthrough(user_id):
            opus = dave.decrypt(user_id, davey.MediaType.audio, opus)
        decoder = self._decoders.setdefault(user_id, discord.opus.Decoder())
        pcm = np.frombuffer(decoder.decode(opus, fec=False), dtype="<i2").reshape(-1, 2).mean(axis=1)
        return (pcm / 32768.0).astype(np.float32)

    def on_packet(self, user: Any, data: Any) -> None:
        """Called on voice_recv's thread for every packet."""
        if user is None or user.bot:
            return
        try:
            pcm = self.pcm_from_packet(user.id, data.opus)
        except Exception as exc:  # noqa: BLE001 - a packet we cannot decrypt yet (key exchange in progress)
            self.failures += 1
            if self.failures in (1, 500):
                log.warning("discord voice receive: cannot decrypt/decode audio from %s (%s)", user.id, exc)
            return
        if pcm is not None:
            self.loop.call_soon_threadsafe(self._feed, user, pcm)

    def _feed(self, user: Any, pcm: np.ndarray) -> None:
        source = self.sources.get(user.id)
        if source is None:
            source = self.sources[user.id] = QueueSource()
            self.tasks.append(asyncio.create_task(self._listen(user, source)))
        source.feed(pcm, rate=48_000)

    async def _listen(self, user: Any, source: QueueSource) -> None:
        from companion.voice.build import build_pipeline

        stt = await self.models.get_stt()  # one speech model for every speaker and every voice
        tts = await self.models.get_tts()
        pipeline = build_pipeline(
            self.companion, self.settings, stt=stt, tts=tts, buffer=self.buffer,
            conversation_id=f"discord-voice:{self.channel.id}", speaker_id=f"discord:{user.id}", speaker_name=user.display_name,
        )
        await pipeline.run(source)

    async def close(self) -> None:
        for source in self.sources.values():
            source.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def start_listening(
    companion: "Companion", settings: "Settings", models: "VoiceModels", client: Any, buffer: "PlaybackBuffer", channel: Any
) -> Listener:
    from discord.ext import voice_recv  # type: ignore[attr-defined]

    listener = Listener(companion, settings, models, client, buffer, channel)
    sink = voice_recv.BasicSink(listener.on_packet, decode=False)
    client.listen(sink)
    log.warning("discord: EXPERIMENTAL voice receive is on in %s (DAVE decrypt shim; see README)", channel.name)
    return listener
