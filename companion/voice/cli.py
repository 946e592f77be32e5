"""``companion voice``: one spoken turn, headless, through the real pipeline (VAD -> STT -> LLM -> TTS)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from .audio import Audio, write_wav
from .playback import PacedOutput, PlaybackBuffer
from .sources import WavFileSource

__all__ = ["one_voice_turn"]


async def one_voice_turn(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Stream ``args.input`` into the pipeline like a microphone, answer once, write the reply to ``args.output``."""
    from ..app import build_companion
    from .build import build_pipeline, build_stt, build_tts

    source_path = Path(args.input)
    # Fail on unreadable audio before loading any model.
    from .audio import iter_wav

    next(iter(iter_wav(source_path, 0.02)), None)
    companion = build_companion(settings)
    stt, tts = build_stt(settings), build_tts(settings)
    await companion.start()
    try:
        await stt.start()
        await tts.start()
        buffer = PlaybackBuffer(tts.sample_rate, level=companion.audio_level)
        output = PacedOutput(buffer, realtime=not args.fast, record=True)
        pipeline = build_pipeline(
            companion, settings, stt=stt, tts=tts, buffer=buffer,
            conversation_id=args.conversation, speaker_id=args.speaker, speaker_name=args.name,
        )
        output.start()
        started = time.perf_counter()
        await pipeline.run(WavFileSource(source_path, realtime=not args.fast), max_turns=1)
        await output.close()
        recording = np.concatenate(output.recording) if output.recording else np.zeros(0, np.float32)
        if args.output:
            write_wav(args.output, Audio(recording, buffer.rate))
        if not pipeline.turns:
            return {
                "heard": False,
                "transcript": "",
                "reply": "",
                "message": f"nothing heard: no speech in {source_path}",
                "seconds": round(time.perf_counter() - started, 3),
            }
        voice = pipeline.turns[0]
        result = voice.result
        return {
            "heard": True,
            "transcript": voice.transcript,
            "reply": result.reply if result else "",
            "spoken": result.spoken if result and result.spoken is not None else (result.reply if result else ""),
            "error": result.error if result else "no reply",
            "timings": voice.timings_ms(),
            "speculative_transcript": voice.speculative_hit,
            "output": str(args.output) if args.output else None,
            "sample_rate": buffer.rate,
            "output_seconds": round(len(recording) / buffer.rate, 3),
        }
    finally:
        await stt.close()
        await tts.close()
        await companion.close(memory_grace=30.0)

