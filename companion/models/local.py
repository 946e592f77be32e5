"""Model files already on this machine: what `pull` put in the hub cache, and Ollama's store.

Ollama keeps each model's GGUF as a content-addressed blob (``blobs/sha256-...``)
named by a manifest per ``name:tag``; llama.cpp reads that blob directly, so
`companion model use ollama:NAME` points at it without a second copy.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LocalModel", "hub_models", "ollama_models", "ollama_dir", "cached_file", "resolve_local", "inventory"]

OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
OLLAMA_PROJECTOR_LAYER = "application/vnd.ollama.image.projector"


@dataclass(frozen=True, slots=True)
class LocalModel:
    name: str  # how `companion model use` takes it
    path: Path
    size_bytes: int
    source: str  # "hub" or "ollama"
    mmproj: Path | None = None


def cached_file(repo: str, file: str, cache_dir: str | None = None) -> Path | None:
    """The pulled file, if it is complete in the hub cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, file, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def hub_models(cache_dir: str | None = None) -> list[LocalModel]:
    """Every GGUF in the hub cache (whoever pulled it), as ``ORG/REPO:FILE``."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, OSError):
        return []
    found = []
    for repo in info.repos:
        for revision in repo.revisions:
            for f in revision.files:
                if f.file_name.lower().endswith(".gguf") and "mmproj" not in f.file_name.lower():
                    found.append(LocalModel(f"{repo.repo_id}:{f.file_path.relative_to(revision.snapshot_path)}", f.file_path, f.size_on_disk, "hub"))
    return sorted(found, key=lambda m: m.name)


def ollama_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models").expanduser()


def ollama_models(root: Path | None = None) -> list[LocalModel]:
    """Ollama's models whose weights are one GGUF blob, as ``ollama:NAME:TAG``."""
    root = root or ollama_dir()
    manifests = root / "manifests"
    if not manifests.is_dir():
        return []
    found = []
    for manifest in manifests.rglob("*"):
        if not manifest.is_file():
            continue
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        model = _blob(root, layers, OLLAMA_MODEL_LAYER)
        if model is None:
            continue
        parts = manifest.relative_to(manifests).parts  # registry/namespace/name/tag
        name, tag = parts[-2], parts[-1]
        namespace = parts[-3] if len(parts) >= 3 and parts[-3] != "library" else ""
        label = f"{namespace}/{name}" if namespace else name
        found.append(LocalModel(f"ollama:{label}:{tag}", model, model.stat().st_size, "ollama", _blob(root, layers, OLLAMA_PROJECTOR_LAYER)))
    return sorted(found, key=lambda m: m.name)


def _blob(root: Path, layers: list[dict], media_type: str) -> Path | None:
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == media_type:
            digest = str(layer.get("digest", "")).replace(":", "-")
            path = root / "blobs" / digest
            if path.is_file():
                return path
    return None


def resolve_local(ref: str) -> tuple[Path, Path | None]:
    """(model file, projector or None) on this machine for NAME, ORG/REPO:FILE, ollama:NAME:TAG or a path."""
    from companion.models.catalog import load_catalog
    from companion.models.hub import ModelError, parse_ref

    if ref.startswith("ollama:"):
        wanted = ref if ref.count(":") >= 2 else ref + ":latest"
        for m in ollama_models():
            if m.name == wanted:
                return m.path, m.mmproj
        raise ModelError(f"Ollama has no model {ref[len('ollama:'):]} here (`companion model list` shows what it has)")
    path = Path(ref).expanduser()
    if path.is_file():
        return path, None
    if ref.startswith(("/", "~", ".")) or ref.count("/") > 1 or "\\" in ref:  # a path, not ORG/REPO
        raise ModelError(f"no model file at {path}: give the path of a .gguf file, a catalog NAME or ORG/REPO:FILE.gguf")
    model = parse_ref(ref, load_catalog())
    if not model.file:
        raise ModelError(f"name the file: {model.repo}:FILE.gguf (or pull it first and use what pull printed)")
    found = cached_file(model.repo, model.file)
    if found is None:
        raise ModelError(f"{ref} is not downloaded: companion model pull {ref}")
    projector = cached_file(model.repo, model.mmproj) if model.mmproj else None
    return found, projector


def inventory() -> dict[str, Any]:
    """What `model list` and the control page show: this machine, the catalog (fits? recommended? downloaded?), files on disk."""
    from huggingface_hub import constants

    from companion.models.catalog import Machine, fits, hardware_class, load_catalog, recommended

    catalog = load_catalog()
    machine = Machine.detect(Path(constants.HF_HUB_CACHE))
    best = recommended(catalog, machine)
    rows = []
    for entry in catalog:
        ok, where = fits(entry, machine)
        path = cached_file(entry.repo, entry.file)
        rows.append({
            "name": entry.name, "repo": entry.repo, "file": entry.file, "quant": entry.quant, "size_bytes": entry.download_bytes,
            "ram_gb": entry.ram_gb, "vram_gb": entry.vram_gb, "context": entry.context, "licence": entry.licence,
            "tools": entry.tools, "vision": entry.vision, "languages": list(entry.languages), "fits": ok, "runs_on": where if ok else "",
            "why_not": "" if ok else where, "recommended": best is not None and entry.name == best.name,
            "downloaded": str(path) if path else "", "why": entry.why,
        })
    local = [{"name": m.name, "path": str(m.path), "size_bytes": m.size_bytes, "source": m.source} for m in [*hub_models(), *ollama_models()]]
    here = {
        "class": hardware_class(machine), "ram_bytes": machine.ram_bytes, "free_disk_bytes": machine.free_disk_bytes,
        "gpu": machine.gpu, "vram_free_bytes": machine.vram_free_bytes, "cores": machine.cores,
    }
    return {"machine": here, "catalog": rows, "local": local}
