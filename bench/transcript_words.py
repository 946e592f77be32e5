"""The voice turn's transcript against whole-utterance decodes: words of the script each one loses.

Why this and not a per-question diff: whisper-base is on a knife-edge for some words (piper's "Biscuit" comes out
"this kid", "this could" or "biscuit" depending on the rendering, and on how much audio surrounds it), so a turn
and a whole decode of the same audio disagree now one way, now the other. Counting, over many renderings, the
words *of the script* that each loses says whether the product's way of decoding (stretches cut at the
person's pauses, read while they go on, a 10 s encoder window) hears worse than reading the whole utterance at
once; a per-question diff against one whole decode counts the whole decode's own mistakes as the turn's.

Each question is spoken by the embedded piper voice (a different rendering each time: piper samples) and by
espeak-ng, streamed at real-time pace into the real pipeline (Silero VAD, the product's turn policy and
stretch settings, faster-whisper with the product's settings); the reply is scripted, its first words ready
0.8 s after the end of speech as the embedded model's are, so that a pause between sentences is taken back as
the product takes it back, and only hearing is measured. Each is also decoded whole, with Whisper's full 30 s window (faster-whisper's default)
and with the product's 10 s window.

    .venv/bin/python bench/transcript_words.py                  # 2 piper renderings + espeak-ng, 10 questions
    .venv/bin/python bench/transcript_words.py --renderings 4 --voices piper
    .venv/bin/python bench/transcript_words.py --set voice.stretch_pause_ms=0   # other settings: say so
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from companion.character.persona import default_character
from companion.config import Settings, with_overrides
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.runtime.events import Transcript
from companion.testing import ScriptedLLM
from companion.voice.audio import INPUT_RATE, Audio, read_wav
from companion.voice.build import build_pipeline, build_stt, build_tts
from companion.voice.playback import PacedOutput, PlaybackBuffer
from companion.voice.sources import QueueSource
from companion.voice.sources import feed_realtime as feed
from companion.voice.stt.faster_whisper import FasterWhisperSTT
from companion.voice.tts.base import TTS

QUESTIONS = [
    "Hi there, I just got home from work and I am really tired. What should I cook for dinner tonight?",
    "My friend Anna is visiting from Reykjavik next weekend. Can you suggest something fun we could do together?",
    "I have been learning to play the guitar for three months. How can I practise better every day?",
    "The weather has been cold and rainy all week long. Do you know any good books for a cosy evening?",
    "I want to start running in the mornings before work. How far should I run during the first week?",
    "My cat Biscuit keeps waking me up at five in the morning. What can I do so that we both sleep longer?",
    "Tomorrow I have an important job interview at a bank in Edinburgh. Could you help me feel less nervous?",
    "We are planning a trip to the mountains in the summer. What should we pack for a long hike there?",
    "My teacher Haruki says my Japanese pronunciation is improving. How can I practise with my bonsai club?",
    "Can you tell me a short story about a dragon who is afraid of the dark and wants to make friends?",
]
# Spellings whisper may choose that are the same word: not a word lost.
SAME = {"five": "5", "three": "3", "practise": "practice", "cosy": "cozy", "favourite": "favorite", "i'm": "i am"}


def words(text: str) -> set[str]:
    out: set[str] = set()
    for word in re.findall(r"[a-z0-9']+", text.lower()):
        out.update(SAME.get(word, word).split())
    return out


REPLY = "Let me think about that one for a little moment."


class Silent(TTS):
    """A reply that takes no time to say: the benchmark measures hearing, not speaking."""

    sample_rate = 16000

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        yield np.zeros(160, np.float32)


async def renderings(voices: list[str], count: int, settings: Settings, tmp: Path) -> list[tuple[str, str, np.ndarray]]:
    out = []
    piper = build_tts(settings) if "piper" in voices else None
    if piper is not None:
        await piper.start()
        for _ in range(count):
            for text in QUESTIONS:
                chunks = [c async for c in piper.synthesize(text)]
                out.append(("piper", text, Audio(np.concatenate(chunks), piper.sample_rate).to(INPUT_RATE).samples))
        await piper.close()
    if "espeak" in voices:
        if shutil.which("espeak-ng") is None:
            raise SystemExit("espeak-ng is not installed (apt install espeak-ng), or pass --voices piper")
        for i, text in enumerate(QUESTIONS):
            path = tmp / f"q{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True)
            out.append(("espeak", text, read_wav(path).samples))
    return out


async def turn_transcript(settings: Settings, stt: FasterWhisperSTT, audio: np.ndarray, tmp: Path, n: int) -> tuple[str, float]:
    """What the voice pipeline answers to ``audio`` spoken into the microphone at real-time pace."""
    companion = Companion(
        settings, llm=ScriptedLLM([REPLY], token_delay=0.1), character=default_character(), history=HistoryStore(tmp / f"h{n}.sqlite3")
    )
    await companion.start()
    buffer = PlaybackBuffer(16000)
    output = PacedOutput(buffer, realtime=True)
    output.start()
    pipeline = build_pipeline(companion, settings, stt=stt, tts=Silent(), buffer=buffer)
    finals: list[str] = []
    companion.bus.subscribe(Transcript, lambda e: finals.append(e.text) if e.final else None)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed(source, np.concatenate([np.zeros(INPUT_RATE // 2, np.float32), audio]))
    silence = np.zeros(INPUT_RATE // 10, np.float32)
    for _ in range(100):  # until the reply has begun (up to 10 s): a take-back may give a longer transcript
        if pipeline.turns and pipeline.turns[-1].audible():
            break
        await feed(source, silence)
    source.close()
    await run
    await output.close()
    await companion.close(memory_grace=0)
    after = pipeline.turns[-1].timings_ms().get("stt_after_end_ms", float("nan")) if pipeline.turns else float("nan")
    return (finals[-1] if finals else ""), after


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument("--renderings", type=int, default=2, help="piper renderings of each question")
    parser.add_argument("--set", action="append", default=[], help="override a setting: section.field=value (repeatable)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = with_overrides(
            Settings.model_validate({"companion": {"data_dir": tmp_name}, "memory": {"enabled": False}}), args.set
        )
        clips = await renderings(args.voices.split(","), args.renderings, settings, tmp)
        stt = build_stt(settings)
        if not isinstance(stt, FasterWhisperSTT):
            raise SystemExit("this benchmark compares faster-whisper decodes: set voice.stt.provider = faster-whisper")
        cache = settings.cache_path() / "models"
        wholes = {"whole, 30 s window": FasterWhisperSTT(stt.model_ref, cache_dir=cache, context_s=0),
                  "whole, 10 s window": FasterWhisperSTT(stt.model_ref, cache_dir=cache, context_s=10)}
        for model in (stt, *wholes.values()):
            await model.start()
        lost = {"voice turn": 0, **dict.fromkeys(wholes, 0)}
        differs = 0
        waits: list[float] = []  # transcript after end detection, ms
        pad = np.zeros(INPUT_RATE // 5, np.float32)
        for n, (voice, script, audio) in enumerate(clips):
            text, after = await turn_transcript(settings, stt, audio, tmp, n)
            waits.append(after)
            heard = {"voice turn": text}
            for name, whole in wholes.items():
                heard[name] = await whole.transcribe(np.concatenate([pad, audio, pad]))
            missed = {name: sorted(words(script) - words(text)) for name, text in heard.items()}
            for name, m in missed.items():
                lost[name] += len(m)
            mark = "" if missed["voice turn"] == missed["whole, 30 s window"] else "  <- differs"
            differs += bool(mark)
            print(f"{n + 1:3} [{voice}] {heard['voice turn']!r}{mark}")
            for name, m in missed.items():
                if m:
                    print(f"      {name} lost {m}" + (f": {heard[name]!r}" if name != "voice turn" else ""))
        for model in (stt, *wholes.values()):
            await model.close()
    print(f"\n{len(clips)} utterances ({args.voices}; {args.renderings} piper renderings of {len(QUESTIONS)} questions)"
          + (f", settings {args.set}" if args.set else ", product defaults"))
    print("| decode | words of the script lost |\n|---|---|")
    for name, count in lost.items():
        print(f"| {name} | {count} |")
    print(f"utterances where the voice turn and the 30 s whole decode lost different words: {differs}")
    print(f"transcript after end detection: median {statistics.median(waits):.0f} ms, worst {max(waits):.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
