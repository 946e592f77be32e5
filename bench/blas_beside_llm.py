"""The model reading a new message right after memory recall embedded it, and while their words are embedded again.

Recall embeds the message with the embedded sentence encoder (NumPy) just before llama.cpp reads the prompt; keeping
the person's own words embeds it again. NumPy's BLAS (OpenBLAS) leaves its worker threads busy-waiting after each
call it split across them, on the cores the model's threads (standing back at nice 10) then read with. Printed:
the median milliseconds per prompt token of a 40-word message read alone, right after an embedding, and with an
embedding started 20 ms into the read, with NumPy's BLAS at its default threads and at one (what the companion
sets when it starts, companion/runtime/threads.py); and one sentence's embedding time under each.

    .venv/bin/python bench/blas_beside_llm.py
    .venv/bin/python bench/blas_beside_llm.py --repeat 12
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

WORDS = "the quick brown fox jumps over the lazy dog while my cat biscuit sleeps on the warm sofa near the window".split()
SENTENCE = "My cat Biscuit keeps waking me up at five in the morning."


async def measure(repeat: int, one_thread: bool) -> None:
    from companion.llm.base import GenerationOptions
    from companion.llm.llamacpp import LlamaCppLLM
    from companion.memory.embed import SentenceTransformerEmbedder
    from companion.runtime.threads import one_blas_thread

    if one_thread:
        one_blas_thread()
    llm = LlamaCppLLM(nice=10)  # the product's default
    await llm.start()
    embedder = SentenceTransformerEmbedder()
    await embedder.start()
    system = {"role": "system", "content": "You are Mika, a friendly companion. " * 20}
    per_token: dict[str, list[float]] = {"alone": [], "after an embedding": [], "beside an embedding": []}
    background: set[asyncio.Task[object]] = set()
    for rep in range(repeat):
        for mode, figures in per_token.items():
            text = f"{mode} {rep} " + " ".join((WORDS * 10)[rep : rep + 40])
            if mode == "after an embedding":
                await embedder.embed([f"{SENTENCE} {rep}"])  # each new: the embedder's cache would skip the model
            if mode == "beside an embedding":
                def later(rep: int = rep) -> None:
                    background.add(asyncio.ensure_future(embedder.embed([f"{SENTENCE} again {rep}"])))
                asyncio.get_running_loop().call_later(0.02, later)
            async for _ in llm.stream([system, {"role": "user", "content": text}], GenerationOptions(max_tokens=1, cache_key="bench")):
                pass
            timings = llm.last_timings
            figures.append(timings["prompt_ms"] / timings["prompt_n"])
            await asyncio.sleep(0.3)
    started = time.perf_counter()
    for i in range(5):
        await embedder.embed([f"{SENTENCE} timed {i}"])
    embed_ms = (time.perf_counter() - started) / 5 * 1000
    label = "one BLAS thread" if one_thread else "default BLAS threads"
    print(f"{label}: a sentence embeds in {embed_ms:.0f} ms")
    for mode, figures in per_token.items():
        print(f"  {label}, model reading {mode:20s}: median {statistics.median(figures[1:]):.2f} ms/token")
    await llm.close()
    await embedder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--one-thread", choices=["yes", "no"], help=argparse.SUPPRESS)  # one setting, in this process
    args = parser.parse_args()
    if args.one_thread:
        asyncio.run(measure(args.repeat, args.one_thread == "yes"))
        return
    for setting in ("no", "yes"):  # a fresh process each: a BLAS limit lasts for the process
        subprocess.run([sys.executable, __file__, "--repeat", str(args.repeat), "--one-thread", setting], check=True)


if __name__ == "__main__":
    main()
