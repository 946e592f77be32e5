"""Her first words' synthesis while the model writes the next ones, on the same CPU: what `[llm.llamacpp] nice` buys.

The embedded piper voice says a short sentence alone, then while the embedded llama.cpp model is generating (as it
is while the first piece of a reply is synthesised), with the model's threads at nice 0 and at the default 10.
Printed: the median time per setting over --repeat tries, and the model's generation speed beside piper.

    .venv/bin/python bench/tts_beside_llm.py
    .venv/bin/python bench/tts_beside_llm.py --nice 0 5 10 --repeat 8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from companion.config import Settings
from companion.llm.base import GenerationOptions
from companion.llm.llamacpp import LlamaCppLLM
from companion.voice.tts.piper import PiperTTS

SENTENCE = "Oh, that is a lovely question."
PROMPT = [{"role": "user", "content": "Tell me a very long story about a dragon and a princess."}]


async def synthesis_ms(tts: PiperTTS) -> float:
    started = time.perf_counter()
    async for _ in tts.synthesize(SENTENCE):
        pass
    return (time.perf_counter() - started) * 1000


async def beside(llm: LlamaCppLLM, tts: PiperTTS) -> tuple[float, float]:
    """Piper's time while the model generates, and the model's tokens per second meanwhile."""
    pieces = 0

    async def generate() -> None:
        nonlocal pieces
        async for chunk in llm.stream(PROMPT, GenerationOptions(max_tokens=200)):
            pieces += bool(chunk.text)

    task = asyncio.create_task(generate())
    await asyncio.sleep(0.5)  # the prompt is read: the model is writing
    before, started = pieces, time.perf_counter()
    took = await synthesis_ms(tts)
    rate = (pieces - before) / max(1e-6, time.perf_counter() - started)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return took, rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nice", type=int, nargs="+", default=[0, Settings().llm.llamacpp.nice])
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args()
    tts = PiperTTS()
    await tts.start()
    alone = [await synthesis_ms(tts) for _ in range(args.repeat)]
    print(f"piper alone: {statistics.median(alone):.0f} ms for {SENTENCE!r}")
    for nice in args.nice:
        llm = LlamaCppLLM(parallel=1, nice=nice)  # a new model: llama.cpp's threads take the nice of the loading thread
        await llm.start()
        runs = [await beside(llm, tts) for _ in range(args.repeat)]
        await llm.close()
        print(f"beside the model at nice {nice:2d}: piper {statistics.median(r[0] for r in runs):.0f} ms, "
              f"the model writing {statistics.median(r[1] for r in runs):.0f} pieces/s meanwhile")
    await tts.close()


if __name__ == "__main__":
    asyncio.run(main())
