"""Local voice chat for ``companion run``: the microphone in, the speaker out, supervised.

A missing or unplugged device must not take the companion down: the web chat
and other adapters keep serving, and we retry opening the devices with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from companion.core.speech import Voice
from companion.voice.errors import VoiceError

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion
    from companion.voice.models import VoiceModels

log = logging.getLogger(__name__)


def _device(value: str) -> str | int | None:
    if not value:
        return None
    return int(value) if value.isdigit() else value


async def run_local_voice(companion: "Companion", settings: "Settings", stop: asyncio.Event, models: "VoiceModels | None" = None) -> None:
    """Listen and speak until ``stop`` is set; reopen the devices with backoff when they fail.

    ``models``: the process's shared voice models (closed by their owner); without them this builds its own.
    """
    from companion.runtime.events import AdapterStatus
    from companion.voice.build import build_pipeline
    from companion.voice.models import VoiceModels
    from companion.voice.playback import PlaybackBuffer, SpeakerOutput
    from companion.voice.sources import MicrophoneSource

    own = models is None
    models = models or VoiceModels(settings)
    try:
        stt, tts = await models.get()
    except VoiceError as exc:
        log.error("voice is off: %s", exc)
        companion.bus.publish(AdapterStatus("voice", "error", str(exc)))
        return
    delay = 1.0
    warned = False
    try:
        while not stop.is_set():
            buffer = PlaybackBuffer(tts.sample_rate, level=companion.audio_level)
            mic = MicrophoneSource(device=_device(settings.voice.input_device))
            speaker = SpeakerOutput(buffer, device=_device(settings.voice.output_device))
            try:
                speaker.start()
                mic.start()
            except VoiceError as exc:
                await speaker.close()
                await mic.close_stream()
                if not warned:
                    log.error("voice: %s; retrying in the background", exc)
                    warned = True
                companion.bus.publish(AdapterStatus("voice", "reconnecting", str(exc)))
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 30.0)
                continue
            delay, warned = 1.0, False
            companion.bus.publish(AdapterStatus("voice", "connected", "microphone and speaker open"))
            log.info("voice: listening on the microphone (barge-in %s)", settings.voice.barge_in)
            pipeline = build_pipeline(companion, settings, stt=stt, tts=tts, buffer=buffer)
            # The speaker speaks its own conversation and whatever is said to the audience (stream answers,
            # game commentary, announcements): the router sends those here.
            conversation = pipeline.conversation_id
            unsubscribe = companion.voices.add(Voice("speaker", buffer, tts, owns=conversation.__eq__, broadcast=True))
            listening = asyncio.create_task(pipeline.run(mic))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            mic.close()
            pipeline.interrupt_reply()
            await asyncio.gather(listening, return_exceptions=True)
            unsubscribe()
            await mic.close_stream()
            await speaker.close()
    finally:
        if own:
            await models.close()
