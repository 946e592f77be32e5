"""Set-up checks that touch hardware and apps: the microphone and speaker, and VTube Studio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from companion.config import Settings

__all__ = ["DeviceList", "list_devices", "record_level", "play_test", "echo_check", "VTSFinding", "find_vtube_studio"]


@dataclass
class DeviceList:
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    problem: str = ""  # why there are none (no PortAudio, no devices)


def list_devices() -> DeviceList:
    """Input and output device names, or why there are none."""
    from companion.voice.errors import VoiceError
    from companion.voice.playback import _sounddevice

    try:
        sd = _sounddevice()
        devices = list(sd.query_devices())
    except VoiceError as exc:
        return DeviceList(problem=str(exc))
    except Exception as exc:  # noqa: BLE001 - PortAudio errors of every kind mean "no usable device"
        return DeviceList(problem=f"audio devices cannot be listed: {exc}")
    return DeviceList(
        inputs=[d["name"] for d in devices if d.get("max_input_channels", 0) > 0],
        outputs=[d["name"] for d in devices if d.get("max_output_channels", 0) > 0],
    )


def record_level(device: str | None, seconds: float = 2.0, on_level: Callable[[float], None] | None = None) -> float:
    """Record ``seconds`` from the microphone, calling ``on_level`` (0..1) as it goes; returns the loudest level."""
    from companion.voice.playback import _sounddevice

    sd = _sounddevice()
    peak = 0.0
    with sd.InputStream(device=device or None, channels=1, samplerate=16000, dtype="float32") as stream:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            block, _overflow = stream.read(1600)
            level = float(np.sqrt(np.mean(np.square(block)))) * 4
            peak = max(peak, level)
            if on_level is not None:
                on_level(min(1.0, level))
    return peak


async def spoken(settings: Settings, text: str) -> tuple[np.ndarray, int]:
    """``text`` said by the configured TTS: its samples and their rate."""
    from companion.voice.build import build_tts

    tts = build_tts(settings)
    await tts.start()
    try:
        chunks = [chunk async for chunk in tts.synthesize(text)]
    finally:
        await tts.close()
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)), tts.sample_rate


async def play_test(settings: Settings, text: str) -> float:
    """Say ``text`` through the configured TTS on the chosen speaker; returns the seconds of audio played."""
    from companion.voice.playback import _sounddevice

    audio, rate = await spoken(settings, text)
    sd = _sounddevice()
    await asyncio.to_thread(sd.play, audio, rate, device=settings.voice.output_device or None, blocking=True)
    return len(audio) / rate


def echo_check(settings: Settings, text: str = "Hello! I am checking whether I can hear myself.") -> dict[str, Any]:
    """Play a sentence on the configured speaker while recording the microphone, run the product's echo canceller
    over the two, and say whether she can talk through the speakers here (the figure in dB) or needs headphones.

    One full-duplex stream plays and records, so both start on the same sample; blocking (call it in a thread).
    """
    from companion.voice.audio import INPUT_RATE, resample
    from companion.voice.echo import cancel_recording
    from companion.voice.playback import _sounddevice

    audio, rate = asyncio.run(spoken(settings, text))
    device_rate = 48000
    far = np.concatenate([resample(audio, rate, device_rate), np.zeros(device_rate // 2, np.float32)])  # and its echo tail
    sd = _sounddevice()
    devices = (settings.voice.input_device or None, settings.voice.output_device or None)
    recorded = sd.playrec(far, samplerate=device_rate, channels=1, dtype="float32", device=devices, blocking=True)
    near = np.asarray(recorded, dtype=np.float32).reshape(-1)
    _clean, out = cancel_recording(resample(far, device_rate, INPUT_RATE), resample(near, device_rate, INPUT_RATE))
    out["mic_level"] = round(float(np.sqrt(np.mean(near**2))), 4)
    return out


@dataclass
class VTSFinding:
    url: str = ""
    model: str = ""
    hotkeys: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)  # emotion -> hotkey name
    problem: str = ""


async def find_vtube_studio(settings: Settings, url: str | None = None) -> VTSFinding:
    """Connect (VTube Studio shows its approval pop-up the first time), list hotkeys, map emotions by name."""
    from companion.avatar.avatar import KNOWN_EMOTIONS
    from companion.avatar.cli import token_path
    from companion.avatar.client import AvatarError, VTSClient
    from companion.avatar.discovery import discover
    from companion.avatar.protocol import Hotkey, default_emotion_map

    target = url or settings.avatar.url
    if url is None:
        port = await discover(timeout=1.5)
        if port is not None:
            target = f"ws://127.0.0.1:{port}"
    cfg = settings.avatar
    client = VTSClient(target, token_path=token_path(settings), plugin_name=cfg.plugin_name, developer=cfg.developer)
    try:
        await client.connect()
    except (AvatarError, OSError, asyncio.TimeoutError) as exc:
        return VTSFinding(url=target, problem=str(exc) or "VTube Studio does not answer")
    try:
        data: dict[str, Any] = await client.request("HotkeysInCurrentModelRequest", {})
        hotkeys = [Hotkey.from_api(h) for h in data.get("availableHotkeys", []) if isinstance(h, dict)]
        mapping = {emotion: hotkey.name for emotion, hotkey in default_emotion_map(hotkeys, KNOWN_EMOTIONS).items()}
        return VTSFinding(url=target, model=str(data.get("modelName") or ""), hotkeys=[h.name for h in hotkeys], mapping=mapping)
    except (AvatarError, OSError, asyncio.TimeoutError) as exc:
        return VTSFinding(url=target, problem=str(exc))
    finally:
        await client.close()
