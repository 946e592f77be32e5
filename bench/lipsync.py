"""Lip sync against a local VTube Studio stand-in: injection rate, interval jitter, audio-to-mouth offset.

A reply is synthesised with the embedded piper voice (a modulated tone when the
voice extra is missing), played at real time through the same playback buffer
and level meter the voice pipeline uses, while the avatar injects MouthOpen
into the fake VTube Studio server (tests/fakes_vts.py, real websockets).

- rate: injections per second while audio plays, vs the configured lipsync_hz.
- jitter: |interval - 1/hz| between injections as the server received them, p50/p99.
- offset: the lag that best aligns the audio's loudness (as played) with the
  mouth values the server received (cross-correlation, 5 ms steps).

    .venv/bin/python bench/lipsync.py --hz 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from companion.avatar.avatar import Avatar  # noqa: E402
from companion.config import AvatarSection  # noqa: E402
from companion.core.audio_level import AudioLevel  # noqa: E402
from companion.runtime.bus import EventBus  # noqa: E402
from companion.voice.playback import PacedOutput, PlaybackBuffer  # noqa: E402
from tests.fakes_vts import FakeVTS  # noqa: E402

TEXT = ("Good evening everyone, and welcome back to the stream. Tonight we are going to play something new, "
        "and I promise it will be a lot of fun. Let me know in the chat what you think!")


async def reply_audio() -> tuple[np.ndarray, int]:
    try:
        from companion.voice.tts.piper import PiperTTS

        tts = PiperTTS()
        chunks = [c async for c in tts.synthesize(TEXT)]
        await tts.close()
        return np.concatenate(chunks), tts.sample_rate
    except Exception as exc:  # noqa: BLE001
        print(f"(piper unavailable: {exc}; using a syllable-modulated tone)")
        rate = 22050
        t = np.arange(rate * 8) / rate
        return (np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * 0.3).astype(np.float32), rate


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hz", type=int, default=30)
    args = parser.parse_args()
    audio, rate = await reply_audio()
    vts = await FakeVTS(jitter=0).start()
    bus, level = EventBus(), AudioLevel()
    played: list[tuple[float, float]] = []  # (time, rms) of audio as the output took it
    with tempfile.TemporaryDirectory() as tmp:
        avatar = Avatar(AvatarSection(enabled=True, lipsync_hz=args.hz), bus, level, token_path=Path(tmp) / "tok", url=vts.url)
        stop = asyncio.Event()
        task = asyncio.create_task(avatar.run(stop))
        await asyncio.wait_for(avatar.connected.wait(), 5)
        buffer = PlaybackBuffer(rate, level=level)

        def tap(block: np.ndarray) -> None:
            played.append((time.perf_counter(), float(np.sqrt(np.mean(block * block)))))

        output = PacedOutput(buffer, realtime=True, block_ms=10, on_audio=tap)
        output.start()
        await asyncio.sleep(0.5)
        vts.injections.clear()
        t0 = time.perf_counter()
        buffer.push(0, TEXT, audio, rate, final=True)
        await buffer.wait_drained()
        t1 = time.perf_counter()
        await asyncio.sleep(0.3)
        await output.close()
        stop.set()
        await task
    await vts.stop()

    during = [(t, v["MouthOpen"]) for t, v in vts.injections if t0 <= t <= t1]
    times = np.array([t for t, _ in during])
    intervals = np.diff(times)
    rate_measured = (len(times) - 1) / (times[-1] - times[0])
    jitter_ms = np.abs(intervals - 1.0 / args.hz) * 1000
    # offset: align the played loudness with the mouth values, both resampled on a 5 ms grid
    grid = np.arange(t0, t1, 0.005)
    loud = np.interp(grid, [t for t, _ in played], [r for _, r in played])
    mouth = np.interp(grid, times, [v for _, v in during])
    loud = (loud - loud.mean()) / (loud.std() or 1)
    mouth = (mouth - mouth.mean()) / (mouth.std() or 1)
    lags = range(-40, 41)  # -200..200 ms
    scores = [float(np.mean(loud[max(0, -k): len(loud) - max(0, k)] * mouth[max(0, k): len(mouth) - max(0, -k)])) for k in lags]
    best = list(lags)[int(np.argmax(scores))] * 5

    print(f"reply: {len(audio) / rate:.1f} s of audio, lipsync_hz={args.hz}")
    print(f"  injection rate : {rate_measured:.2f} /s ({(rate_measured / args.hz - 1) * 100:+.1f}% of configured)")
    print(f"  interval jitter: p50 {pct(jitter_ms, 50):.2f} ms   p99 {pct(jitter_ms, 99):.2f} ms")
    print(f"  audio -> mouth offset: {best} ms (mouth lags audio when positive; correlation {max(scores):.2f})")
    print(f"  mouth closed after the end: {vts.injections[-1][1]['MouthOpen'] == 0.0}")


if __name__ == "__main__":
    asyncio.run(main())
