"""A chat flood through moderation and the prioritiser: memory, per-message cost, event-loop stalls.

1,000 messages per second for 60 s (a raid-sized flood: many users, copypasta,
repeated emotes, questions, links, blocked words, cheers), fed in 10 ms
batches on the event loop, while the companion takes one candidate every 3 s.

Prints: peak RSS growth, ingest latency p50/p99 per message, and the longest
event-loop stall (a 5 ms ticker measures how late it wakes up).
Targets: RSS growth < 50 MiB, p99 < 1 ms, no stall over 50 ms.

    .venv/bin/python bench/chat_flood.py --seconds 60 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from companion.core.moderation import Moderator  # noqa: E402
from companion.stream.message import ChatMessage  # noqa: E402
from companion.stream.prioritiser import ChatPrioritiser  # noqa: E402

WORDS = "boss fight pog lol gg hi mika play that song again what game is this so good when stream tomorrow".split()
PASTA = "this is a copypasta that goes around every chat and everyone posts it at once lol"


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_message(rng: random.Random, i: int) -> ChatMessage:
    user = f"viewer{rng.randint(0, 20000)}"
    roll = rng.random()
    if roll < 0.15:
        text = PASTA
    elif roll < 0.2:
        text = f"check https://spam{rng.randint(0, 99)}.example/free now"
    elif roll < 0.22:
        text = "you b4dw0rd"
    elif roll < 0.3:
        text = f"@mika {' '.join(rng.choices(WORDS, k=5))}?"
    else:
        text = " ".join(rng.choices(WORDS, k=rng.randint(1, 8))) + ("!" * rng.randint(0, 3))
    kind, amount = ("cheer", rng.randint(1, 1000)) if rng.random() < 0.005 else ("chat", 0)
    return ChatMessage("twitch", user, user, text, kind=kind, amount=amount, mentions_bot="@mika" in text)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(7)
    moderator = Moderator(["badword"])
    prioritiser = ChatPrioritiser()
    costs: list[float] = []
    stalls: list[float] = []
    answered = 0
    # warm up (imports, caches) before measuring memory
    for i in range(2000):
        prioritiser.add(make_message(rng, i))
    base = rss_mib()
    peak = base
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - before - 0.005)

    async def consumer() -> None:
        nonlocal answered
        while not stop.is_set():
            await asyncio.sleep(3.0)
            if prioritiser.next() is not None:
                answered += 1

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(consumer())]
    start = time.perf_counter()
    sent = 0
    batch = max(1, args.rate // 100)
    while time.perf_counter() - start < args.seconds:
        for _ in range(batch):
            msg = make_message(rng, sent)
            t0 = time.perf_counter()
            verdict = moderator.check_input(msg)
            if verdict.allowed:
                prioritiser.add(msg)
            costs.append(time.perf_counter() - t0)
            sent += 1
        if sent % 5000 < batch:
            peak = max(peak, rss_mib())
        await asyncio.sleep(max(0.0, start + sent / args.rate - time.perf_counter()))
    stop.set()
    await asyncio.gather(*tasks)
    peak = max(peak, rss_mib())
    costs_ms = sorted(c * 1000 for c in costs)
    print(f"{sent} messages in {args.seconds:.0f} s ({sent / args.seconds:.0f}/s); {answered} candidates taken")
    print(f"  RSS growth (peak): {peak - base:.1f} MiB  (start {base:.0f} MiB)")
    print(f"  ingest per message: p50 {statistics.median(costs_ms):.3f} ms   p99 {costs_ms[int(len(costs_ms) * 0.99)]:.3f} ms   max {costs_ms[-1]:.2f} ms")
    print(f"  longest event-loop stall: {max(stalls) * 1000:.1f} ms (p99 {sorted(stalls)[int(len(stalls) * 0.99)] * 1000:.1f} ms)")
    print(f"  queue {len(prioritiser)}; duplicates {prioritiser.stats.duplicates}, copypasta {prioritiser.stats.copypasta}, "
          f"flooding {prioritiser.stats.flooding}, evicted {prioritiser.stats.evicted}, summaries {prioritiser.stats.summaries}")


if __name__ == "__main__":
    asyncio.run(main())
