"""Echo cancellation in a simulated room: how much of her voice is left, how fast it recovers, what it costs.

Her voice is the embedded piper voice saying a few sentences; the room is the test suite's (tests/voice/room.py):
a synthetic impulse response with a 300 ms reverb tail, a delay, a gain and a little noise. For each canceller
installed (``webrtc``: pywebrtc-audio, the product's; ``livekit``: its AudioProcessingModule) it prints

- the echo return loss enhancement (ERLE) after 2 s of convergence at 20, 80 and 200 ms of delay, the canceller
  alone and with the product's residual gate (what the speech detector hears);
- the ERLE in each second after the echo path grows by 100 ms mid-speech, and how long after it (and after it
  shrinks by 100 ms) every 250 ms block she is audible in is 25 dB down for good;
- the CPU time per second of audio (one core).

    .venv/bin/python bench/echo.py
    .venv/bin/python bench/echo.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from companion.voice.audio import INPUT_RATE, resample  # noqa: E402
from companion.voice.echo import BACKENDS, EchoCanceller, echo_return_loss_enhancement, make_backend  # noqa: E402
from companion.voice.errors import VoiceError  # noqa: E402
from tests.voice.room import through_room  # noqa: E402

LINES = [
    "Hello there! I was thinking about what we could do today.",
    "Maybe we could play a game of chess, or talk about the weather.",
    "It has been lovely this week, sunny and warm in the afternoons.",
    "What do you think? I would love to hear about your day.",
]


async def her_voice() -> np.ndarray:
    from companion.voice.tts.piper import PiperTTS

    tts = PiperTTS()
    await tts.start()
    parts = []
    for line in LINES:
        audio = np.concatenate([chunk async for chunk in tts.synthesize(line)]).astype(np.float32)
        parts += [resample(audio, tts.sample_rate, INPUT_RATE), np.zeros(INPUT_RATE // 2, np.float32)]
    return np.concatenate(parts)


def run(backend: str, far: np.ndarray, near: np.ndarray, *, gate: bool) -> tuple[np.ndarray, float]:
    canceller = EchoCanceller(make_backend(backend), gate=gate)
    started = time.process_time()
    out = [canceller.process(near[i : i + 320], far[i : i + 320]) for i in range(0, len(near), 320)]
    cpu = time.process_time() - started
    clean = np.concatenate(out)
    clean = np.concatenate([clean, np.zeros(max(0, len(near) - len(clean)), np.float32)])[: len(near)]
    return clean, cpu / (len(near) / INPUT_RATE)


def recovered_after(near: np.ndarray, clean: np.ndarray, far: np.ndarray, change: int, step_s: float = 0.25) -> float | None:
    """Seconds after ``change`` from which every ``step_s`` block she is audible in is at least 25 dB down (None: never)."""
    step = int(step_s * INPUT_RATE)
    blocks = range(change, len(near) - step + 1, step)
    bad = [i for i, start in enumerate(blocks)
           if (erle := echo_return_loss_enhancement(near[start : start + step], clean[start : start + step], far[start : start + step])) is not None
           and erle < 25]
    if bad and bad[-1] == len(blocks) - 1:
        return None
    return round((bad[-1] + 1) * step_s, 2) if bad else 0.0


def measure(backend: str, far: np.ndarray) -> dict[str, object]:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(far)).astype(np.float32) * 0.001
    out: dict[str, object] = {"backend": backend}
    costs = []
    for delay in (0.02, 0.08, 0.2):
        near = through_room(far, delay_s=delay, gain=0.6) + noise
        alone, cost = run(backend, far, near, gate=False)
        gated, _ = run(backend, far, near, gate=True)
        costs.append(cost)
        out[f"erle_db_{int(delay * 1000)}ms"] = round(echo_return_loss_enhancement(near, alone, far, skip_s=2.0) or 0.0, 1)
        gated_erle = echo_return_loss_enhancement(near, gated, far, skip_s=2.0) or 0.0
        out[f"erle_db_{int(delay * 1000)}ms_gated"] = round(min(gated_erle, 99.0), 1)  # 99: all of her was silenced
    change = 4 * INPUT_RATE
    for before, after, name in ((0.06, 0.16, ""), (0.16, 0.06, "_shrunk")):
        near = through_room(far, delay_s=before, gain=0.6) + noise
        near[change:] = (through_room(far, delay_s=after, gain=0.6) + noise)[change:]
        for gate in (False, True):
            clean, _ = run(backend, far, near, gate=gate)
            per_second = []
            for s in range(4):
                part = slice(change + s * INPUT_RATE, change + (s + 1) * INPUT_RATE)
                erle = echo_return_loss_enhancement(near[part], clean[part], far[part])
                per_second.append(None if erle is None else round(min(erle, 99.0), 1))
            out["after_delay_change_db_per_s" + name + ("_gated" if gate else "")] = per_second
            out["recovered_after_s" + name + ("_gated" if gate else "")] = recovered_after(near, clean, far, change)
    out["cpu_share_of_one_core"] = round(statistics.median(costs), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    far = asyncio.run(her_voice())
    results = []
    for name in BACKENDS:
        try:
            make_backend(name)
        except VoiceError:
            continue
        results.append(measure(name, far))
    if args.json:
        print(json.dumps({"seconds": round(len(far) / INPUT_RATE, 1), "results": results}))
        return
    print(f"her voice: {len(far) / INPUT_RATE:.1f} s of piper speech through a simulated room (reverb 300 ms, gain 0.6)")
    for r in results:
        print(f"\n{r['backend']}:")
        for delay in (20, 80, 200):
            print(f"  delay {delay:3d} ms: ERLE {r[f'erle_db_{delay}ms']:5.1f} dB alone, {r[f'erle_db_{delay}ms_gated']:5.1f} dB with the gate (99: silence)")
        print(f"  echo path +100 ms: ERLE per second after it {r['after_delay_change_db_per_s']} alone, "
              f"{r['after_delay_change_db_per_s_gated']} with the gate (99: silence)")
        for name, change in (("", "+100"), ("_shrunk", "-100")):
            print(f"  echo path {change} ms: what the speech detector hears is 25 dB down in every 250 ms from "
                  f"{r['recovered_after_s' + name + '_gated']} s after it (the canceller alone: {r['recovered_after_s' + name]} s; "
                  "it leaks a little where she starts a phrase)")
        print(f"  CPU: {100 * float(r['cpu_share_of_one_core']):.1f}% of one core")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
