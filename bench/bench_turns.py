"""Text-turn latency on the embedded default model, and the engine's own overhead.

Prints, for N turns: median first-token and first-sentence latency (from the
message arriving to the first token / first complete sentence), the median
time spent in the provider, and the engine's overhead per turn: the wall time
of ``Companion.respond`` (history read, prompt building, chunking, events,
history writes) minus the time spent waiting on the LLM. Target: < 5 ms median.

The same overhead is also measured with a zero-latency scripted LLM, which
isolates the engine from model noise.

    .venv/bin/python bench/bench_turns.py --turns 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from companion.app import build_companion
from companion.config import Settings
from companion.engine import Companion
from companion.history import HistoryStore
from companion.persona import default_character
from companion.testing import ScriptedLLM

PROMPTS = [
    "Hi! How are you today?",
    "What game should we play tonight?",
    "Tell me something funny.",
    "I had a long day at work.",
    "Do you remember what I said earlier?",
]


async def measure(companion: Companion, turns: int, tag: str) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"first_token": [], "first_sentence": [], "provider": [], "overhead": [], "total": []}
    for i in range(turns):
        start = time.perf_counter()
        result = await companion.respond(PROMPTS[i % len(PROMPTS)], conversation_id=f"bench-{tag}")
        total = (time.perf_counter() - start) * 1000
        if result.error:
            raise SystemExit(f"turn failed: {result.error}")
        t = result.timings_ms
        figures["first_token"].append(t.get("first_token", float("nan")))
        figures["first_sentence"].append(t.get("first_sentence", float("nan")))
        figures["provider"].append(t["provider"])
        figures["overhead"].append(total - t["provider"])
        figures["total"].append(total)
    return figures


def report(title: str, figures: dict[str, list[float]]) -> None:
    print(f"\n{title} ({len(figures['total'])} turns)")
    for key, values in figures.items():
        values = [v for v in values if v == v]
        if values:
            print(f"  {key:>15}: median {statistics.median(values):9.2f} ms   min {min(values):9.2f}   max {max(values):9.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--skip-model", action="store_true", help="only the scripted-LLM overhead run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            {"companion": {"data_dir": tmp}, "llm": {"max_tokens": args.max_tokens, "temperature": 0.7},
             "memory": {"enabled": False}}  # memory recall is a model call of its own: measured in bench/memory_recall.py
        )
        scripted = Companion(
            settings,
            llm=ScriptedLLM(["[happy] Oh, hello! It is so nice to see you again. What are we doing today? " * 2]),
            character=default_character(),
            history=HistoryStore(Path(tmp) / "scripted.sqlite3"),
        )
        await scripted.start()
        await measure(scripted, 3, "warmup")
        report("engine with a zero-latency scripted LLM", await measure(scripted, max(args.turns, 50), "scripted"))
        await scripted.close()

        if not args.skip_model:
            companion = build_companion(settings)
            t = time.perf_counter()
            await companion.start()
            print(f"\nembedded default model loaded in {time.perf_counter() - t:.2f} s")
            await measure(companion, 1, "warmup")
            report(f"embedded default SmolLM2-135M, max_tokens={args.max_tokens}", await measure(companion, args.turns, "model"))
            await companion.close()


if __name__ == "__main__":
    asyncio.run(main())
