"""What a listener hears over a whole conversation: defects per reply, reply length and first-token time.

One person talks with the companion for ten turns on the product's defaults
(the embedded model, memory on, written replies as `companion chat` gives
them), twice in fresh data folders:

- one process: the whole conversation in one running companion;
- process per turn: a new process for every message, as `companion chat -m`
  or a restarted companion would (the prompt cache comes from disk, if at all).

Per turn it prints the defects a listener would notice (``companion.text.review``:
script lines, spoken stage directions, repeated and copied sentences, wrong
self-names, empty replies), the written and spoken length, the first token
(ms from the message to the first token), llama.cpp's cached/read prompt
tokens, and ("model") the defects in what the model wrote before the reply
hygiene cleaned it: how well the samplers keep it from looping; then the totals, the median and longest reply and the ratio of the
last three turns' first token to the first three turns'.

    .venv/bin/python bench/reply_quality.py                  # embedded default, both modes
    .venv/bin/python bench/reply_quality.py --mode one       # one process only
    .venv/bin/python bench/reply_quality.py --config my.toml # any configured model
    .venv/bin/python bench/reply_quality.py --set llm.temperature=0.6 --repeat 3
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
from pathlib import Path

# A conversation of our own (not used by the tests): greetings, questions about her, facts about the person,
# a request for something longer, and a question back about what was said.
CONVERSATION = [
    "Hi! I'm Robin.",
    "How has your day been so far?",
    "I work night shifts as a nurse, so I'm just waking up.",
    "What kind of music do you like?",
    "Tell me about your favourite place in the world.",
    "I'm thinking of getting a cat. Any advice?",
    "What should I cook for dinner tonight?",
    "Do you remember what I do for a living?",
    "Can you tell me a short joke?",
    "Thanks, I have to go to work now. Bye!",
]
SPEAKER, NAME, CONVERSATION_ID = "robin", "Robin", "bench-reply-quality"


async def worker(job: dict) -> list[dict]:
    from companion.app import build_companion
    from companion.config import Settings, load_settings, with_overrides

    settings = load_settings(Path(job["config"])) if job["config"] else Settings()
    settings = with_overrides(settings, job["set"])
    settings = settings.model_copy(update={"companion": settings.companion.model_copy(update={"data_dir": job["data"]})})
    started = time.perf_counter()
    companion = build_companion(settings)
    await companion.start()
    ready_ms = (time.perf_counter() - started) * 1000
    turns = []
    try:
        for text in job["messages"]:
            result = await companion.respond(text, conversation_id=CONVERSATION_ID, speaker_id=SPEAKER, speaker_name=NAME)
            timings = dict(getattr(companion.llm, "last_timings", {}) or {})
            turns.append({
                "message": text, "reply": result.reply, "written": result.written, "spoken": [s.speech for s in result.sentences],
                "first_token": result.timings_ms.get("first_token"), "error": result.error,
                "cached": timings.get("cache_n"), "read": timings.get("prompt_n"), "ready_ms": ready_ms,
                "character": companion.character.name,
            })
    finally:
        await companion.close(memory_grace=30.0)
    return turns


def run_worker(job: dict) -> list[dict]:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"worker process failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def conversation(mode: str, args: argparse.Namespace) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        job = {"config": args.config, "set": args.set, "data": str(Path(tmp) / "data")}
        if mode == "one":
            return run_worker({**job, "messages": CONVERSATION})
        return [turn for text in CONVERSATION for turn in run_worker({**job, "messages": [text]})]


def report(mode: str, turns: list[dict]) -> dict:
    from companion.text.review import review_reply

    char_name = turns[0]["character"]
    print(f"\n== {'one process' if mode == 'one' else 'a process per turn'} ==")
    print(f"{'turn':>4} {'script':>6} {'stage':>5} {'rep':>3} {'copy':>4} {'name':>4} {'empty':>5} "
          f"{'chars':>5} {'spoken':>6} {'first ms':>8} {'cached/read':>11} {'model':>5}  reply")
    totals: dict[str, int] = {}
    earlier: list[str] = []
    for i, turn in enumerate(turns, 1):
        # her last three replies and the message itself: an echo of what was just said is a copy too
        counts = review_reply(turn["reply"], turn["spoken"], [*earlier[-3:], turn["message"]], char_name).counts()
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        # What the model itself wrote, before the hygiene cleaned it: how well the samplers work.
        raw = review_reply(turn["written"], [turn["written"]], [*earlier[-3:], turn["message"]], char_name).counts()
        raw_total = sum(v for k, v in raw.items() if k != "empty")
        totals["model_defects"] = totals.get("model_defects", 0) + raw_total
        totals["model_chars"] = totals.get("model_chars", 0) + len(turn["written"])
        earlier.append(turn["reply"])
        spoken = sum(len(s) for s in turn["spoken"])
        first = turn["first_token"]
        cache = f"{turn['cached']}/{turn['read']}" if turn["cached"] is not None else "-"
        print(f"{i:>4} {counts['script']:>6} {counts['stage']:>5} {counts['repeated']:>3} {counts['copied']:>4} "
              f"{counts['wrong_name']:>4} {counts['empty']:>5} {len(turn['reply']):>5} {spoken:>6} "
              f"{'-' if first is None else round(first):>8} {cache:>11} {raw_total:>5}  {turn['reply'][:90]!r}")
        if turn["error"]:
            print(f"     error: {turn['error']}")
        if not turn["reply"].strip():
            print(f"     the model wrote: {turn['written'][:300]!r}")
    lengths = [len(t["reply"]) for t in turns]
    firsts = [t["first_token"] for t in turns if t["first_token"] is not None]
    ratio = statistics.median(firsts[-3:]) / statistics.median(firsts[:3]) if len(firsts) >= 6 else float("nan")
    if not firsts:
        firsts = [float("nan")]
    summary = {
        **totals, "median_chars": statistics.median(lengths), "max_chars": max(lengths),
        "first_token_median_ms": statistics.median(firsts) if firsts else None,
        "first_token_last_ms": firsts[-1] if firsts else None, "last3_over_first3": ratio,
    }
    print("defects: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    print(f"written: median {summary['median_chars']:.0f} chars, longest {summary['max_chars']}; first token: median "
          f"{summary['first_token_median_ms']:.0f} ms, last turn {summary['first_token_last_ms']:.0f} ms, "
          f"last three / first three {ratio:.2f}x")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="", help="a companion.toml (default: the embedded defaults)")
    parser.add_argument("--mode", choices=["one", "each", "both"], default="both")
    parser.add_argument("--set", action="append", default=[], help="override a setting: section.field=value (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="run each mode this many times (fresh data each time)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asyncio.run(worker(json.loads(args.worker)))))
        return
    label = args.config or "embedded defaults"
    if args.set:
        label += " with " + ", ".join(args.set)
    print(f"reply quality, {len(CONVERSATION)} turns ({label})")
    modes = ["one", "each"] if args.mode == "both" else [args.mode]
    summaries: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            summaries[mode].append(report(mode, conversation(mode, args)))
    if args.repeat > 1:
        for mode, runs in summaries.items():
            keys = ["script", "stage", "repeated", "copied", "wrong_name", "empty", "model_defects"]
            print(f"\n{mode}: over {len(runs)} runs, defects per run (median): "
                  + ", ".join(f"{k} {statistics.median(r.get(k, 0) for r in runs)}" for k in keys)
                  + f"; median chars {statistics.median(r['median_chars'] for r in runs):.0f}, "
                  f"longest {max(r['max_chars'] for r in runs)}; ratio {statistics.median(r['last3_over_first3'] for r in runs):.2f}x")


if __name__ == "__main__":
    main()
