"""Local voice chat for ``companion run``: the microphone in, the speaker out, supervised.

A missing or unplugged device must not take the companion down: the web chat
and other adapters keep serving, and the supervisor opens the devices again with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from companion.core.speech import Voice
from companion.voice.errors import VoiceError

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion
    from companion.voice.build import VoiceModels
    from companion.voice.echo import EchoCanceller, FarEndTap

log = logging.getLogger(__name__)


def _device(value: str) -> str | int | None:
    if not value:
        return None
    return int(value) if value.isdigit() else value


def echo_for(mode: str, output_name: str) -> "tuple[EchoCanceller | None, FarEndTap | None]":
    """The canceller and far-end tap for ``[voice] echo_cancel`` (None, None: off).

    "auto" is on unless the speaker is named like headphones; a missing canceller package is an error for "on"
    and one warning for "auto" (she then may hear herself: the README says what to install).
    """
    from companion.voice.echo import EchoCanceller, FarEndTap, headphones_by_name, make_backend

    if mode == "off" or (mode == "auto" and headphones_by_name(output_name)):
        return None, None
    try:
        backend = make_backend()
    except VoiceError as exc:
        if mode == "on":
            raise
        log.warning("voice: no echo cancellation (%s); she may hear herself through the speakers", exc)
        return None, None
    return EchoCanceller(backend), FarEndTap()


async def run_local_voice(
    companion: "Companion", settings: "Settings", stop: asyncio.Event, models: "VoiceModels | None" = None, cast: Any = None,
) -> None:
    """Listen and speak until ``stop`` is set; raise when the devices cannot be opened or go away.

    Run under the supervisor (``companion run`` does): it logs the outage once and opens the devices again with
    its backoff, restarting the delays once they were open. ``models``: the process's shared voice models
    (closed by their owner); without them this builds its own.
    """
    from companion.runtime.events import AdapterStatus
    from companion.voice.build import VoiceModels, build_pipeline
    from companion.voice.playback import PlaybackBuffer, SpeakerOutput
    from companion.voice.sources import MicrophoneSource

    own = models is None
    models = models or VoiceModels(settings)
    try:
        try:
            stt, tts = await models.get()
        except VoiceError as exc:
            log.error("voice is off: %s", exc)
            companion.bus.publish(AdapterStatus("voice", "error", str(exc)))
            return
        buffer = PlaybackBuffer(tts.sample_rate, level=companion.audio_level)
        speaker = SpeakerOutput(buffer, device=_device(settings.voice.output_device))
        canceller, tap = echo_for(settings.voice.echo_cancel, speaker.device_name())
        speaker.tap = tap
        mic = MicrophoneSource(device=_device(settings.voice.input_device), canceller=canceller, tap=tap)
        try:
            speaker.start()
            mic.start()
        except VoiceError:
            await speaker.close()
            await mic.close_stream()
            raise
        companion.bus.publish(AdapterStatus("voice", "connected", "microphone and speaker open"))
        log.info(
            "voice: listening on the microphone (barge-in %s, echo cancellation %s)", settings.voice.barge_in,
            "on" if canceller is not None else "off",
        )
        pipeline = build_pipeline(companion, settings, stt=stt, tts=tts, buffer=buffer, cast=cast)  # cast: [[characters]]
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
        if not stop.is_set():
            raise VoiceError("the microphone stopped delivering audio (unplugged?)")
    finally:
        if own:
            await models.close()
