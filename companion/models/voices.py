"""Piper voices from the hub (``rhasspy/piper-voices``): `companion voice list|pull|use`.

The repo holds every Piper voice as ``FAMILY/LANG_CODE/DATASET/QUALITY/NAME.onnx`` with its
``NAME.onnx.json`` beside it, and a ``voices.json`` index (language, quality, files and sizes).
A voice is named as in that index: ``en_US-lessac-medium``, ``zh_CN-huayan-medium``, ``de_DE-thorsten-high``.
Ears the same way: ``whisper:SIZE`` pulls faster-whisper's CTranslate2 folder (tiny to large-v3-turbo).
Downloads go through ``hub.pull_file``: the hub cache, progress, resume and the same errors as models.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from companion.models.hub import ModelError, pull_file

__all__ = ["PIPER_REPO", "VoiceInfo", "voice_files", "pull_voice", "list_voices", "WHISPER_REPOS", "pull_whisper"]

# faster-whisper's sizes (CTranslate2 conversions on the hub), as faster-whisper itself names them.
WHISPER_REPOS = {
    "tiny": "Systran/faster-whisper-tiny", "tiny.en": "Systran/faster-whisper-tiny.en",
    "base": "Systran/faster-whisper-base", "base.en": "Systran/faster-whisper-base.en",
    "small": "Systran/faster-whisper-small", "small.en": "Systran/faster-whisper-small.en",
    "medium": "Systran/faster-whisper-medium", "medium.en": "Systran/faster-whisper-medium.en",
    "large-v3": "Systran/faster-whisper-large-v3", "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "distil-large-v3": "Systran/faster-distil-whisper-large-v3",
}
_WHISPER_FILES = re.compile(r"^(config\.json|preprocessor_config\.json|model\.bin|tokenizer\.json|vocabulary\.\w+)$")

PIPER_REPO = "rhasspy/piper-voices"
_NAME = re.compile(r"^([a-z]{2,3})_([A-Z]{2})-(.+)-(x_low|low|medium|high)$")


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    name: str
    language: str  # en_US
    language_name: str  # English (United States)
    quality: str
    speakers: int
    size_bytes: int


def voice_files(name: str) -> tuple[str, str]:
    """The repo paths of a voice's model and config."""
    match = _NAME.match(name.strip())
    if match is None:
        raise ModelError(
            f"{name!r} is not a Piper voice name: LANG_REGION-DATASET-QUALITY, e.g. en_US-lessac-medium or "
            "zh_CN-huayan-medium (`companion voice list LANG` shows them)"
        )
    family, region, dataset, quality = match.groups()
    folder = f"{family}/{family}_{region}/{dataset}/{quality}"
    return f"{folder}/{name}.onnx", f"{folder}/{name}.onnx.json"


def pull_voice(name: str, *, endpoint: str | None = None, cache_dir: str | None = None, progress: bool = True) -> Path:
    """Download (or find in the cache) a voice's .onnx and .onnx.json, side by side; the .onnx path."""
    model, config = voice_files(name)
    onnx = pull_file(PIPER_REPO, model, cache_dir=cache_dir, endpoint=endpoint, progress=progress, gguf=False)
    meta = pull_file(PIPER_REPO, config, cache_dir=cache_dir, endpoint=endpoint, progress=False, gguf=False)
    try:
        json.loads(meta.read_text(encoding="utf-8"))["audio"]["sample_rate"]
    except (OSError, ValueError, KeyError, TypeError):
        meta.unlink(missing_ok=True)
        raise ModelError(f"{name}: its .onnx.json is not a Piper voice config; it was deleted, pull again") from None
    return onnx


def list_voices(language: str = "", *, endpoint: str | None = None, cache_dir: str | None = None) -> list[VoiceInfo]:
    """The voices in the repo's index, for a language ("zh", "en_GB") or all."""
    index = pull_file(PIPER_REPO, "voices.json", cache_dir=cache_dir, endpoint=endpoint, progress=False, gguf=False)
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ModelError(f"{PIPER_REPO}'s voices.json could not be read; pull again later") from None
    out = []
    for name, raw in sorted(data.items()):
        lang = raw.get("language", {})
        code = str(lang.get("code", ""))
        if language and language != "all" and not (code == language or code.split("_")[0] == language and "_" not in language):
            continue
        size = sum(int(f.get("size_bytes", 0)) for path, f in raw.get("files", {}).items() if path.endswith(".onnx"))
        label = f"{lang.get('name_english', '')} ({lang.get('country_english', '')})".strip()
        out.append(VoiceInfo(name, code, label, str(raw.get("quality", "")), int(raw.get("num_speakers", 1)), size))
    return out


def pull_whisper(size: str, *, endpoint: str | None = None, cache_dir: str | None = None, progress: bool = True) -> Path:
    """Download a faster-whisper size (its CTranslate2 folder) into the hub cache; the folder, usable offline."""
    from huggingface_hub import HfApi

    from companion.models.hub import hub_errors

    repo = WHISPER_REPOS.get(size)
    if repo is None:
        raise ModelError(f"{size!r} is not a whisper size; one of: {', '.join(WHISPER_REPOS)}")
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    with hub_errors(repo, ""):
        files = [f for f in HfApi(endpoint=endpoint).list_repo_files(repo) if _WHISPER_FILES.match(f)]
    if "model.bin" not in files:
        raise ModelError(f"{repo} has no model.bin: not a faster-whisper (CTranslate2) model")
    paths = [pull_file(repo, f, cache_dir=cache_dir, endpoint=endpoint, progress=progress and f == "model.bin", gguf=False) for f in files]
    return paths[0].parent
