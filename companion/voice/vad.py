"""Voice activity detection, frame by frame, for live audio.

Silero (the ONNX model faster-whisper ships; onnxruntime only, no torch) is
the default: accurate and about 0.1 ms per 32 ms frame here. webrtcvad is
lighter and cruder. Both sit behind :class:`VAD` so the turn policy never
knows which one runs. Digital silence skips the model entirely, which keeps
hours of silent input cheap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from companion.voice.audio import INPUT_RATE
from companion.voice.errors import VoiceError

__all__ = ["VAD", "SileroVAD", "WebRtcVAD", "VADError", "FrameSplitter", "build_vad"]

SILENCE_RMS = 1e-4  # about -80 dBFS: no microphone is this quiet unless muted


class VADError(VoiceError):
    """The VAD cannot run; the message says what to install."""


class VAD(ABC):
    frame_samples: int

    @abstractmethod
    def _model_prob(self, frame: np.ndarray) -> float: ...

    def prob(self, frame: np.ndarray) -> float:
        """Speech probability of one frame of ``frame_samples`` float32 samples at 16 kHz."""
        if float(np.sqrt(np.mean(frame * frame))) < SILENCE_RMS:
            return 0.0
        return self._model_prob(frame)

    def reset(self) -> None:
        """Forget state between utterances (recurrent models)."""


class SileroVAD(VAD):
    frame_samples = 512
    _context = 64

    def __init__(self) -> None:
        try:
            import onnxruntime
            from faster_whisper.vad import get_assets_path
        except ImportError as exc:
            raise VADError(f"the silero VAD needs faster-whisper and onnxruntime ({exc.name} is missing): pip install 'companion[voice]'") from None
        import os

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
        self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._last = np.zeros(self._context, dtype=np.float32)

    def _model_prob(self, frame: np.ndarray) -> float:
        x = np.concatenate([self._last, frame]).astype(np.float32).reshape(1, -1)
        self._last = frame[-self._context :].astype(np.float32)
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        return float(np.asarray(out).reshape(-1)[0])

    def prob(self, frame: np.ndarray) -> float:
        p = super().prob(frame)
        if p == 0.0:  # keep the context window moving through silence
            self._last = frame[-self._context :].astype(np.float32)
        return p


class WebRtcVAD(VAD):
    frame_samples = 480  # 30 ms

    def __init__(self, aggressiveness: int = 2) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise VADError("the webrtc VAD needs webrtcvad-wheels: pip install 'companion[voice]'") from None
        self._vad = webrtcvad.Vad(aggressiveness)

    def _model_prob(self, frame: np.ndarray) -> float:
        pcm = (np.clip(frame, -1, 1) * 32767).astype(np.int16).tobytes()
        return 1.0 if self._vad.is_speech(pcm, INPUT_RATE) else 0.0


class FrameSplitter:
    """Regroups chunks of any length into exact VAD frames, counting samples."""

    def __init__(self, frame_samples: int) -> None:
        self.frame_samples = frame_samples
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, chunk: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, chunk]) if len(self._pending) else chunk
        n = len(data) // self.frame_samples
        frames = [data[i * self.frame_samples : (i + 1) * self.frame_samples] for i in range(n)]
        self._pending = data[n * self.frame_samples :]
        return frames


def build_vad(kind: str, aggressiveness: int = 2) -> VAD:
    if kind == "silero":
        return SileroVAD()
    if kind == "webrtc":
        return WebRtcVAD(aggressiveness)
    raise VADError(f"unknown VAD {kind!r}; use 'silero' or 'webrtc'")
