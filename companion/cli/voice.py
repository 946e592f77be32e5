"""`companion voice`: one spoken turn from a WAV file, headless, through the real pipeline (VAD -> STT -> LLM -> TTS)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, report, report_text
from companion.config import Settings


def register(sub: Any) -> None:
    voice = sub.add_parser(
        "voice", help="one spoken turn from a WAV file (--input), or Piper voices: list, pull, use",
        description="companion voice --input question.wav: one spoken turn, headless (VAD -> STT -> LLM -> TTS). "
        "companion voice list|pull|use: Piper voices in every language from the hub.",
    )
    actions = voice.add_subparsers(dest="voice_command", metavar="ACTION")
    ls = actions.add_parser("list", help="Piper voices on the hub, for a language (e.g. zh, de, en_GB)")
    ls.add_argument("language", nargs="?", default="", help="language code: zh, ja, de, en_GB... or all (default: [persona] language, else all)")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    pull = actions.add_parser("pull", help="download a Piper voice (e.g. zh_CN-huayan-medium) or a whisper size (whisper:small)")
    pull.add_argument("name")
    pull.add_argument("--no-progress", action="store_true", help="no progress bar")
    use = actions.add_parser(
        "use", help="speak with a voice (a pulled NAME or an .onnx path: [voice.tts]) or hear with whisper:SIZE ([voice.stt])"
    )
    use.add_argument("name")
    use.add_argument("--no-check", action="store_true", help="do not synthesise a test sentence first")
    echo = actions.add_parser(
        "echo", help="run the echo canceller over a recording and say how well it works in this room",
        description="FAR.wav is what the speaker played, NEAR.wav what the microphone heard at the same time "
        "(any rate, mono or stereo, starting together). Prints the echo return loss enhancement in dB.",
    )
    echo.add_argument("--far", required=True, help="what was played (WAV)")
    echo.add_argument("--near", required=True, help="what the microphone heard (WAV)")
    echo.add_argument("--output", "-o", help="write the cleaned microphone signal here (16 kHz WAV)")
    echo.add_argument("--json", action="store_true", help="print one JSON object")
    voice.add_argument("--input", "-i", help="WAV file with the question (any rate, mono or stereo)")
    voice.add_argument("--output", "-o", help="write the spoken reply to this WAV file")
    voice.add_argument("--json", action="store_true", help="print one JSON object (transcript, reply, timings)")
    voice.add_argument("--fast", action="store_true", help="feed the file as fast as possible instead of at real-time pace")
    voice.add_argument("--speaker", default="local", help="who is speaking (an id; memory tells people apart by it)")
    voice.add_argument("--name", help="the speaker's display name")
    voice.add_argument("--conversation", default="voice", help="conversation id")
    voice.set_defaults(handler=Command(_voice))


def _echo(args: argparse.Namespace) -> int:
    """`companion voice echo`: the product's canceller over a recording, its figure and what it means."""
    from companion.voice.audio import INPUT_RATE, Audio, AudioError, read_wav, write_wav
    from companion.voice.echo import cancel_recording
    from companion.voice.errors import VoiceError

    try:
        far, near = read_wav(args.far).samples, read_wav(args.near).samples
        clean, out = cancel_recording(far, near)
        if args.output:
            write_wav(args.output, Audio(clean, INPUT_RATE))
            out["output"] = args.output
    except FileNotFoundError as exc:
        return report_text(f"no such file: {exc.filename}", args.json)
    except (AudioError, VoiceError, OSError) as exc:
        return report(exc, args.json)
    if args.json:
        print(json.dumps(out))
    else:
        figure = "n/a" if out["erle_db"] is None else f"{out['erle_db']} dB"
        print(f"echo return loss enhancement: {figure} over {out['seconds']} s (after {out['converged_after_s']:g} s to converge)")
        print(out["verdict"] + (f"; cleaned audio written to {args.output}" if args.output else ""))
    return 0 if out["erle_db"] is not None else EXIT_FAILURE


def _voice(settings: Settings, args: argparse.Namespace) -> int:
    from companion.app import setup_logging

    action = getattr(args, "voice_command", None)
    if action == "echo":
        return _echo(args)
    if action is not None:
        from companion.cli.model import voices_command

        return voices_command(settings, args)
    if not args.input:
        print("error: companion voice needs --input QUESTION.wav (or an action: list, pull, use)", file=sys.stderr)
        return EXIT_USAGE

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    try:
        import companion.voice.build  # noqa: F401 - the voice extra, checked before any model loads
    except ImportError as exc:
        print(f"error: voice needs its extra ({exc.name} is missing): pip install 'companion[voice]'", file=sys.stderr)
        return EXIT_FAILURE
    try:
        out = asyncio.run(one_voice_turn(settings, args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001
        return report(exc, args.json)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    elif not out["heard"]:
        print(out["message"])
    else:
        print(f"you: {out['transcript']}")
        print(f"reply: {out['spoken']}")
        t = out["timings"]
        print(f"voice-to-voice: {t.get('voice_to_voice_ms', '?')} ms" + (f"; written to {out['output']}" if out["output"] else ""))
    return 0




async def one_voice_turn(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Stream ``args.input`` into the pipeline like a microphone, answer once, write the reply to ``args.output``."""
    import numpy as np

    from companion.app import build_companion
    from companion.voice.audio import Audio, write_wav
    from companion.voice.build import build_pipeline, build_stt, build_tts
    from companion.voice.playback import PacedOutput, PlaybackBuffer
    from companion.voice.sources import WavFileSource

    source_path = Path(args.input)
    # Fail on unreadable audio before loading any model.
    from companion.voice.audio import iter_wav

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

