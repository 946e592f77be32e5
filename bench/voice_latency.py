"""Voice-to-voice latency on the embedded defaults (whisper-base, SmolLM2-135M, piper joe), stage by stage.

Runs the product's defaults (reply budget, memory on) through each local LLM
provider (llama.cpp, the default, and transformers) in one run; K spoken
questions form one conversation per provider, so turn 1 and turn K are
compared. K spoken questions (5-8 s, made locally with piper) are streamed into the real
pipeline at real-time pace, as a microphone would deliver them; each reply
plays out at real time before the next question. Printed per stage, in ms from
the end of the person's speech (the last voiced sample): median and p90.

Words: each question is also transcribed whole, at once, by the same whisper
model with its full 30 s window (what faster-whisper does by default); the
words of the script that each lost are printed per question and counted
(bench/transcript_words.py does the same over many renderings, quickly).

--fresh starts a new process for every question (models loaded and warmed as
`companion run` does, the same data folder, so the conversation goes on): the
first turn after a start, every time, as a person who starts her for one
question meets it.

- voice_to_voice_ms: end of speech -> first reply sample played (the
  end-of-speech wait included).
- overhead_ms: voice-to-voice minus the end-of-speech wait and the time spent
  inside models (STT after the wait, LLM until the first sentence, first TTS
  chunk, memory recall): what the pipeline itself costs.
- "first audio before the LLM finished" counts replies of more than one sentence
  whose first audio was ready while the LLM was still writing.

    .venv/bin/python bench/voice_latency.py                       # both providers, 10 questions
    .venv/bin/python bench/voice_latency.py --providers llamacpp --fresh   # a new process for every question
    .venv/bin/python bench/voice_latency.py --providers llamacpp --max-tokens 60   # other settings: say so
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from transcript_words import QUESTIONS, words  # bench/: one list of questions, one way of counting words

from companion.app import build_companion
from companion.config import Settings, with_overrides
from companion.voice.audio import INPUT_RATE, Audio
from companion.voice.build import build_pipeline, build_stt, build_tts
from companion.voice.pipeline import VoiceTurn
from companion.voice.playback import PacedOutput, PlaybackBuffer
from companion.voice.sources import QueueSource
from companion.voice.sources import feed_realtime as feed
from companion.voice.stt.faster_whisper import FasterWhisperSTT


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def speak_questions(tts, n: int) -> list[np.ndarray]:
    out = []
    for text in QUESTIONS[:n]:
        chunks = [c async for c in tts.synthesize(text)]
        out.append(Audio(np.concatenate(chunks), tts.sample_rate).to(INPUT_RATE).samples)
    return out


def bench_settings(provider: str, args: argparse.Namespace, tmp: str) -> Settings:
    llm: dict = {"provider": provider}
    if args.max_tokens:
        llm["max_tokens"] = args.max_tokens
    settings = Settings.model_validate({
        "companion": {"data_dir": f"{tmp}/{provider}"},
        "llm": llm,
        "memory": {"enabled": not args.no_memory},
        **({"voice": {"commit_seconds": args.commit_seconds}} if args.commit_seconds else {}),
        **({"text": {"first_clause_chars": args.first_clause}} if args.first_clause is not None else {}),
    })
    return with_overrides(settings, args.set)


async def run_provider(provider: str, args: argparse.Namespace, tmp: str, stt, tts, questions, quiet: bool = False) -> list[dict]:
    settings = bench_settings(provider, args, tmp)
    companion = build_companion(settings)
    t = time.perf_counter()
    await companion.start()
    if not quiet:
        print(f"\n== {provider}: loaded and warmed in {time.perf_counter() - t:.1f} s; one conversation of {len(questions)} questions")
    buffer = PlaybackBuffer(tts.sample_rate)
    blocks: list[tuple[float, int]] = []  # (when, samples) of every block played: the gaps inside a reply
    output = PacedOutput(buffer, realtime=True, on_audio=lambda data: blocks.append((time.perf_counter(), len(data))))
    output.start()
    turns: list[VoiceTurn] = []
    pipeline = build_pipeline(companion, settings, stt=stt, tts=tts, buffer=buffer)
    prompts: list[dict] = []  # llama.cpp's own timings of each reply's request: tokens cached and read

    def on_turn(turn: VoiceTurn) -> None:
        turns.append(turn)
        prompts.append(dict(getattr(companion.llm, "last_timings", {}) or {}))

    pipeline.on_turn = on_turn
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    silence = np.zeros(INPUT_RATE // 10, np.float32)
    stalls: list[float] = []
    for i, q in enumerate(questions):
        del blocks[:]
        await feed(source, np.concatenate([np.zeros(INPUT_RATE // 2, np.float32), q]))
        while len(turns) <= i:  # until the reply has been played out
            await feed(source, silence)
        stalls.append(stalled_ms(blocks, tts.sample_rate))
        spoken = turns[-1].result.reply if turns[-1].result else ""
        if not quiet:
            print(f"  {i + 1}: v2v {turns[-1].timings_ms().get('voice_to_voice_ms')} ms, reply {len(spoken)} chars, "
                  f"heard {turns[-1].transcript[:50]!r}")
            print(f"      {stages_line({'timings': turns[-1].timings_ms(), 'prompt': prompts[-1] if prompts else {}})}")
    source.close()
    await run
    await output.close()
    await companion.close(memory_grace=0)
    rows = [row(t) for t in turns]
    for r, stall, prompt in zip(rows, stalls, prompts, strict=False):
        r["stall_ms"] = stall
        r["prompt"] = {k: prompt.get(k) for k in ("cache_n", "prompt_n", "prompt_ms", "predicted_per_second")}
    if not quiet:
        report(provider, rows)
    return rows


async def worker(job: dict) -> dict:
    """One question in this fresh process: voice models and the companion started as `companion run` starts them."""
    args = argparse.Namespace(**job["args"])
    settings = bench_settings(job["provider"], args, job["tmp"])
    t = time.perf_counter()
    stt, tts = build_stt(settings), build_tts(settings)
    await stt.start()
    await tts.start()
    question = np.load(job["question"])
    [turn] = await run_provider(job["provider"], args, job["tmp"], stt, tts, [question], quiet=True)
    await stt.close()
    await tts.close()
    turn["started_s"] = time.perf_counter() - t
    return turn


def run_fresh(provider: str, args: argparse.Namespace, tmp: str, questions: list[np.ndarray]) -> list[dict]:
    print(f"\n== {provider}: a fresh process for each of {len(questions)} questions (one data folder: the conversation goes on)")
    rows = []
    for i, question in enumerate(questions):
        path = f"{tmp}/question-{i}.npy"
        np.save(path, question)
        job = {"provider": provider, "tmp": tmp, "question": path, "args": {k: v for k, v in vars(args).items() if k != "worker"}}
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"question {i + 1}: the worker failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  {i + 1}: v2v {rows[-1]['timings'].get('voice_to_voice_ms')} ms (process start to answer "
              f"{rows[-1]['started_s']:.1f} s), reply {len(rows[-1]['reply'])} chars, heard {rows[-1]['transcript'][:50]!r}")
        print(f"      {stages_line(rows[-1])}")
    report(f"{provider}, a fresh process each", rows)
    return rows


def stages_line(turn: dict) -> str:
    """One question's stages, and what llama.cpp read of its prompt: where a slow turn lost its time."""
    t, p = turn["timings"], turn.get("prompt", {})
    parts = [f"{k.removesuffix('_ms')} {t[k]:.0f}" for k in ("stt_after_end_ms", "recall_ms", "llm_to_first_sentence_ms", "tts_first_chunk_ms") if k in t]
    if p.get("prompt_n") is not None:
        parts.append(f"prompt read {p['prompt_n']} tokens in {p.get('prompt_ms') or 0:.0f} ms ({p.get('cache_n')} cached)")
    return ", ".join(parts)


def stalled_ms(blocks: list[tuple[float, int]], rate: int) -> float:
    """Silence the listener heard inside a reply, after its first audio: the next piece was not ready in time."""
    gaps = (b[0] - a[0] - a[1] / rate for a, b in zip(blocks, blocks[1:], strict=False))
    return round(sum(g for g in gaps if g > 0.03) * 1000, 1)


def row(turn: VoiceTurn) -> dict:
    """What the report needs of one voice turn, as JSON (a --fresh worker sends it to the parent)."""
    multi = bool(turn.result and len(turn.result.sentences) > 1)
    llm_done = turn.handle.turn.marks.get("llm_done", float("inf")) if turn.handle and turn.handle.turn else float("inf")
    return {"timings": turn.timings_ms(), "transcript": turn.transcript, "reply": turn.result.reply if turn.result else "",
            "multi": multi, "early": multi and "first_audio" in turn.marks and turn.marks["first_audio"] < llm_done,
            "speculative_hit": turn.speculative_hit}


def report(provider: str, turns: list[dict]) -> None:
    stages = ["end_detected", "transcript", "first_token", "first_sentence", "first_audio", "playback_start",
              "stt_after_end_ms", "recall_ms", "llm_to_first_sentence_ms", "tts_first_chunk_ms", "voice_to_voice_ms", "overhead_ms"]
    rows = [t["timings"] for t in turns]
    print(f"\nvoice turns through {provider} ({len(rows)} questions, ms from the end of speech)")
    for stage in stages:
        values = [r[stage] for r in rows if stage in r]
        if values:
            print(f"  {stage:>26}: median {statistics.median(values):8.1f}   p90 {pct(values, 0.9):8.1f}")
    v2v = [r.get("voice_to_voice_ms", float("nan")) for r in rows]
    if len(v2v) >= 2:
        print(f"  turn 1 voice-to-voice {v2v[0]:.0f} ms, turn {len(v2v)} {v2v[-1]:.0f} ms "
              f"(ratio {v2v[-1] / v2v[0]:.2f}; median of the last 3 / first 3: "
              f"{statistics.median(v2v[-3:]) / statistics.median(v2v[:3]):.2f})")
    stalls = [t["stall_ms"] for t in turns if "stall_ms" in t]
    if stalls:
        print(f"  silence inside replies after the first audio: median {statistics.median(stalls):.0f} ms, "
              f"max {max(stalls):.0f} ms; replies with more than 100 ms: {sum(s > 100 for s in stalls)}/{len(stalls)}")
    read = [t["prompt"] for t in turns if t.get("prompt", {}).get("prompt_n") is not None]
    if read:
        print(f"  prompt tokens from the cache: median {statistics.median(p['cache_n'] or 0 for p in read):.0f}, read: median "
              f"{statistics.median(p['prompt_n'] for p in read):.0f} in {statistics.median(p['prompt_ms'] or 0 for p in read):.0f} ms; "
              f"generation {statistics.median(p['predicted_per_second'] or 0 for p in read):.0f} tokens/s")
    chars = [len(t["reply"]) for t in turns if t["reply"]]
    if chars:
        print(f"  spoken reply length: median {statistics.median(chars):.0f} characters")
    multi = [t for t in turns if t["multi"]]
    print(f"  first audio before the LLM finished: {sum(t['early'] for t in multi)}/{len(multi)} multi-sentence replies")
    print(f"  speculative transcript used: {sum(t['speculative_hit'] for t in turns)}/{len(turns)}")


async def compare_words(provider: str, turns: list[dict], questions: list[np.ndarray], whole: FasterWhisperSTT) -> None:
    """Words of the script each lost: the voice turn, and a whole-utterance decode of the same audio (30 s window).

    Counted against the script, not against the whole decode: whisper-base is on a knife-edge for some words
    (piper's "Biscuit"), and the two decodes miss them now one way, now the other. bench/transcript_words.py
    counts the same over many renderings."""
    lost_turn = lost_whole = 0
    print(f"\nwords of the script lost: the voice turn against a whole-utterance decode, 30 s window ({provider})")
    for i, (turn, audio) in enumerate(zip(turns, questions, strict=False)):
        reference = await whole.transcribe(audio)
        missed_turn = sorted(words(QUESTIONS[i]) - words(turn["transcript"]))
        missed_whole = sorted(words(QUESTIONS[i]) - words(reference))
        lost_turn += len(missed_turn)
        lost_whole += len(missed_whole)
        if missed_turn or missed_whole:
            print(f"  {i + 1}: turn lost {missed_turn or '-'}, whole decode lost {missed_whole or '-'}\n"
                  f"       whole: {reference!r}\n       heard: {turn['transcript']!r}")
    print(f"  words of the script lost over {len(turns)} questions: voice turn {lost_turn}, whole decode {lost_whole}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--providers", default="llamacpp,transformers", help="local LLM providers to compare, in order")
    parser.add_argument("--max-tokens", type=int, default=0, help="reply budget (default: the config default)")
    parser.add_argument("--no-memory", action="store_true", help="long-term memory off (default: on, as the product)")
    parser.add_argument("--commit-seconds", type=float, default=0.0, help="voice.commit_seconds (default: the config default)")
    parser.add_argument("--first-clause", type=int, default=None, help="text.first_clause_chars (default: the config default)")
    parser.add_argument("--set", action="append", default=[], help="override a setting: section.field=value (repeatable)")
    parser.add_argument("--fresh", action="store_true", help="a new process for every question (the first turn after a start)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(await worker(json.loads(args.worker))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"companion": {"data_dir": tmp}})
        stt, tts = build_stt(settings), build_tts(settings)
        await stt.start()
        await tts.start()
        questions = await speak_questions(tts, args.questions)
        print("questions: " + ", ".join(f"{len(q) / INPUT_RATE:.1f}s" for q in questions))
        results = {}
        for provider in args.providers.split(","):
            if args.fresh:
                results[provider] = run_fresh(provider, args, tmp, questions)
            else:
                results[provider] = await run_provider(provider, args, tmp, stt, tts, questions)
        whole = FasterWhisperSTT("", cache_dir=settings.cache_path() / "models", context_s=0)
        await whole.start()
        for provider, turns in results.items():
            await compare_words(provider, turns, questions, whole)
        await whole.close()
        await stt.close()
        await tts.close()
    if len(results) == 2:
        (a, ta), (b, tb) = results.items()
        va = statistics.median(t["timings"]["voice_to_voice_ms"] for t in ta if "voice_to_voice_ms" in t["timings"])
        vb = statistics.median(t["timings"]["voice_to_voice_ms"] for t in tb if "voice_to_voice_ms" in t["timings"])
        print(f"\nvoice-to-voice median: {a} {va:.0f} ms, {b} {vb:.0f} ms ({vb / va:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
