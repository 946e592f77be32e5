"""Text-turn latency on the embedded default, llama.cpp against transformers, and the engine's own overhead.

One conversation of N turns per local provider (the product's defaults: reply
length, memory on, a pause between turns as a person would leave), printing
per provider the medians of first token and first sentence (from the message
arriving), turn 1 against turn N (does first-token time grow with the
conversation?), reply length, how long replies waited in the LLM scheduler
and how often memory work was preempted for them; then the ratio between
the two providers.

The engine's overhead (wall time of ``Companion.respond`` minus time spent
waiting on the LLM) is measured with a zero-latency scripted LLM first.

    .venv/bin/python bench/bench_turns.py                      # both providers, 20 turns
    .venv/bin/python bench/bench_turns.py --providers llamacpp --turns 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from companion.app import build_companion
from companion.character.persona import default_character
from companion.config import Settings
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.llm.base import Priority
from companion.testing import ScriptedLLM

PROMPTS = [
    "Hi! How are you today?",
    "My name is Robin and I work as a nurse.",
    "What game should we play tonight?",
    "Tell me something funny.",
    "I had a long day at work.",
    "My cat is called Pepper, she is black and white.",
    "Do you like rainy days?",
    "What should I cook for dinner?",
    "I'm learning to play the guitar.",
    "Do you remember what I do for a living?",
    "What's your favourite season?",
    "I'm a bit nervous about tomorrow.",
    "Can you cheer me up?",
    "What do you think about space travel?",
    "My sister is visiting this weekend.",
    "Any ideas for a quiet Sunday?",
    "I finally fixed my bike today!",
    "Tell me about yourself.",
    "What was my cat's name again?",
    "Good night, talk tomorrow!",
]


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


async def measure(companion: Companion, turns: int, tag: str, pause: float = 0.0) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"first_token": [], "first_sentence": [], "provider": [], "overhead": [], "total": [], "chars": []}
    for i in range(turns):
        start = time.perf_counter()
        result = await companion.respond(PROMPTS[i % len(PROMPTS)], conversation_id=f"bench-{tag}")  # the local user
        total = (time.perf_counter() - start) * 1000
        if result.error:
            raise SystemExit(f"turn failed: {result.error}")
        t = result.timings_ms
        figures["first_token"].append(t.get("first_token", float("nan")))
        figures["first_sentence"].append(t.get("first_sentence", float("nan")))
        figures["provider"].append(t["provider"])
        figures["overhead"].append(total - t["provider"])
        figures["total"].append(total)
        figures["chars"].append(len(result.reply))
        read = dict(getattr(companion.llm, "last_timings", {}) or {})
        if read.get("prompt_n") is not None:  # a local model's own figures: what each turn read of its prompt
            print(f"  turn {i + 1}: first token {t.get('first_token', float('nan')):.0f} ms, "
                  f"prompt read {read['prompt_n']} tokens ({read.get('cache_n')} from the cache)")
        if pause:
            await asyncio.sleep(pause)  # the person reads, thinks, types: memory work runs here
    return figures


async def provider_run(provider: str, tmp: str, turns: int, pause: float) -> dict[str, Any]:
    settings = Settings.model_validate({"companion": {"data_dir": str(Path(tmp) / provider)}, "llm": {"provider": provider}})
    companion = build_companion(settings)
    t = time.perf_counter()
    await companion.start()
    load = time.perf_counter() - t
    figures = await measure(companion, turns, provider, pause)
    stats = companion.llm.stats
    waits = list(stats.waits_ms[Priority.REPLY])[-turns:]
    out = {
        "provider": provider,
        "load_s": load,
        "figures": figures,
        "reply_wait_p50": med(waits),
        "reply_wait_max": max(waits) if waits else float("nan"),
        "memory_preempted": stats.preempted[Priority.BACKGROUND],
        "memories": companion.memory.extracted if companion.memory is not None else 0,
    }
    await companion.close(memory_grace=0)
    return out


def report(title: str, figures: dict[str, list[float]]) -> None:
    print(f"\n{title} ({len(figures['total'])} turns)")
    for key, values in figures.items():
        values = [v for v in values if v == v]
        if values:
            print(f"  {key:>15}: median {statistics.median(values):9.2f}   min {min(values):9.2f}   max {max(values):9.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between turns (memory work runs then)")
    parser.add_argument("--providers", default="llamacpp,transformers")
    parser.add_argument("--skip-model", action="store_true", help="only the scripted-LLM overhead run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate({"companion": {"data_dir": tmp}, "memory": {"enabled": False}})
        scripted = Companion(
            settings,
            llm=ScriptedLLM(["[happy] Oh, hello! It is so nice to see you again. What are we doing today? " * 2]),
            character=default_character(),
            history=HistoryStore(Path(tmp) / "scripted.sqlite3"),
        )
        await scripted.start()
        await measure(scripted, 3, "warmup")
        report("engine with a zero-latency scripted LLM (ms; chars = reply length)", await measure(scripted, max(args.turns, 50), "scripted"))
        await scripted.close()
        if args.skip_model:
            return

        runs = []
        for provider in args.providers.split(","):
            print(f"\n== {provider}: one {args.turns}-turn conversation, product defaults (memory on), {args.pause:g} s between turns")
            run = await provider_run(provider, tmp, args.turns, args.pause)
            runs.append(run)
            f = run["figures"]
            report(f"{provider} (loaded in {run['load_s']:.2f} s)", f)
            head, tail = med(f["first_token"][:3]), med(f["first_token"][-3:])
            print(f"  turn 1 first token {f['first_token'][0]:.0f} ms, turn {args.turns} {f['first_token'][-1]:.0f} ms; "
                  f"median of last 3 / first 3 turns: {tail / head:.2f}")
            print(f"  reply waited in the scheduler: median {run['reply_wait_p50']:.2f} ms, max {run['reply_wait_max']:.2f} ms; "
                  f"memory work preempted {run['memory_preempted']} times; {run['memories']} memories stored")
        if len(runs) == 2:
            a, b = runs
            print(f"\n{b['provider']} / {a['provider']} (median ratios, >1 means {a['provider']} is faster):")
            for key in ("first_token", "first_sentence"):
                print(f"  {key:>15}: {med(b['figures'][key]) / med(a['figures'][key]):.2f}x")
            speed = [sum(r["figures"]["chars"]) / (sum(r["figures"]["provider"]) / 1000) for r in (a, b)]
            print(f"  {'writing speed':>15}: {speed[0]:.0f} vs {speed[1]:.0f} reply characters per second of model time "
                  f"({speed[0] / speed[1]:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
