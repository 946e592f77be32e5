"""Downloading a GGUF model from the Hugging Face hub: `companion model pull`.

Through ``huggingface_hub``'s own requests and cache layout, so a pulled file
lands in the user's usual hub cache (shared with other programs), and
``HF_ENDPOINT`` (a mirror), ``HF_TOKEN`` (gated models) and ``HF_HUB_OFFLINE``
work as everywhere else. Its progress bar shows size, speed and time left. An
interrupted download resumes on the next pull (we keep the partial file; the
library alone would start over).

What we add: a short name from the catalog or ``ORG/REPO[:FILE.gguf|:QUANT]``
(a bare repo picks the Q4_K_M file, as ``ollama pull hf.co/...`` does); the
free disk checked before starting; the file checked after (size, the sha256
the hub gives for large files, the GGUF header and chat template read with our
reader), a bad file deleted; and one clear message for each way it fails.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from companion.llm.gguf_meta import GGUFError, read_metadata
from companion.models.catalog import CatalogEntry

__all__ = ["ModelError", "ModelRef", "parse_ref", "pick_file", "pull", "pull_file", "hub_errors", "PREFERRED_QUANT"]

PREFERRED_QUANT = "Q4_K_M"
_QUANT_ORDER = ("Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q8_0")


class ModelError(Exception):
    """A model could not be found, downloaded or checked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    repo: str
    file: str = ""  # empty: pick by quantisation
    quant: str = ""
    mmproj: str = ""  # a vision model's projector, pulled with it
    name: str = ""  # the catalog name, when it came from there


def parse_ref(ref: str, catalog: list[CatalogEntry]) -> ModelRef:
    """A catalog name, ``ORG/REPO``, ``ORG/REPO:FILE.gguf`` or ``ORG/REPO:QUANT``."""
    ref = ref.strip()
    if ref.startswith("hf.co/"):
        ref = ref[len("hf.co/"):]
    entry = next((e for e in catalog if e.name == ref.lower()), None)
    if entry is not None:
        return ModelRef(entry.repo, entry.file, entry.quant, entry.mmproj, entry.name)
    repo, _, tail = ref.partition(":")
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo):
        names = ", ".join(e.name for e in catalog)
        raise ModelError(f"{ref!r} is neither a catalog name ({names}) nor ORG/REPO[:FILE.gguf|:QUANT] from the hub")
    if tail.lower().endswith(".gguf"):
        return ModelRef(repo, file=tail)
    return ModelRef(repo, quant=tail)


def pick_file(repo: str, files: list[str], quant: str = "") -> str:
    """The GGUF to pull from a repo's file list: the asked quantisation, else Q4_K_M (or the nearest we know)."""
    ggufs = [f for f in files if f.lower().endswith(".gguf") and "mmproj" not in f.lower()]
    if not ggufs:
        raise ModelError(f"{repo} has no GGUF file; llama.cpp needs one (look for a repo whose name ends in -GGUF)")
    wanted = [quant] if quant else list(_QUANT_ORDER)
    for q in wanted:
        matches = sorted(f for f in ggufs if q.lower() in Path(f).name.lower())
        whole = [f for f in matches if not re.search(r"-\d{5}-of-\d{5}\.gguf$", f)]
        if whole:
            return whole[0]
        if matches:
            raise ModelError(f"{repo}: the {q} model is split into parts ({matches[0]}...); pick a single-file quantisation")
    if quant:
        raise ModelError(f"{repo} has no {quant} file; it has: {', '.join(sorted(Path(f).name for f in ggufs))}")
    return sorted(ggufs)[0]


def pull(
    ref: ModelRef, *, cache_dir: str | None = None, endpoint: str | None = None, progress: bool = True,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> list[Path]:
    """Download (or find in the cache) the model file and, for a vision model, its projector; checked.

    ``on_progress(done, total)`` is called from the downloading thread as bytes arrive.
    """
    _PROGRESS_HOOK[0] = on_progress
    try:
        return _pull(ref, cache_dir, endpoint, progress)
    finally:
        _PROGRESS_HOOK[0] = None


def _pull(ref: ModelRef, cache_dir: str | None, endpoint: str | None, progress: bool) -> list[Path]:
    from huggingface_hub import HfApi

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    _SHOW_PROGRESS[0] = progress  # our own bar (not the hub library's global switch: other users share it)
    file = ref.file
    with hub_errors(ref.repo, file):
        if not file:
            if _offline():
                raise ModelError(f"{ref.repo}: name the file (ORG/REPO:FILE.gguf) while HF_HUB_OFFLINE is set")
            file = pick_file(ref.repo, HfApi(endpoint=endpoint).list_repo_files(ref.repo), ref.quant)
    paths = [_pull_file(ref.repo, file, cache_dir, endpoint, gguf=True)]
    if ref.mmproj:
        paths.append(_pull_file(ref.repo, ref.mmproj, cache_dir, endpoint, gguf=True))
    return paths


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def pull_file(
    repo: str, file: str, *, cache_dir: str | None = None, endpoint: str | None = None, progress: bool = True, gguf: bool = True
) -> Path:
    """One file of a repo, downloaded (resumed) into the hub cache and checked; the cached copy when it is there."""
    _SHOW_PROGRESS[0] = progress
    return _pull_file(repo, file, cache_dir, endpoint or os.environ.get("HF_ENDPOINT") or None, gguf)


def _pull_file(repo: str, file: str, cache_dir: str | None, endpoint: str | None, gguf: bool) -> Path:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    with hub_errors(repo, file):
        cached = _cached(repo, file, cache_dir)
        if _offline():
            if cached is None:
                from huggingface_hub.errors import LocalEntryNotFoundError

                raise LocalEntryNotFoundError(f"{repo}:{file} is not in the cache")
            return cached
        try:
            meta = get_hf_file_metadata(hf_hub_url(repo, file, endpoint=endpoint), endpoint=endpoint)
        except Exception as exc:
            if cached is not None and (_network_error(exc) or _server_error(exc)):
                return cached  # the hub is out of reach, but we have it: work offline
            raise
        path = _download(repo, file, cache_dir, meta)
    _verify(path, meta.size, meta.etag, repo, file, gguf)
    return path


def _cached(repo: str, file: str, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, file, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def _download(repo: str, file: str, cache_dir: str | None, meta: Any) -> Path:
    """Into the hub cache's layout (blobs/ETAG, snapshots/COMMIT/FILE, refs/main), resuming a partial blob.

    The hub library itself resumes only within one call (it deletes a partial file when a download fails);
    a model is gigabytes, so ours keeps ``blobs/ETAG.incomplete`` and the next pull continues it.
    """
    from huggingface_hub import constants
    from huggingface_hub.file_download import _create_symlink, http_get, repo_folder_name
    from huggingface_hub.utils import build_hf_headers

    if not meta.etag or not meta.commit_hash:
        raise ModelError(f"{repo}:{file}: the hub did not say which version this is (no ETag or commit); try again later")
    etag = meta.etag.strip('"')
    storage = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type="model")
    blob = storage / "blobs" / etag
    pointer = storage / "snapshots" / meta.commit_hash / file
    if not blob.exists():
        _check_disk(cache_dir, meta.size, repo, file)
        partial = blob.with_name(etag + ".incomplete")
        partial.parent.mkdir(parents=True, exist_ok=True)
        resume = partial.stat().st_size if partial.exists() else 0
        if meta.size is not None and resume > meta.size:
            partial.unlink()
            resume = 0
        with partial.open("r+b" if resume else "wb") as fh:
            fh.seek(resume)
            http_get(
                meta.location, fh, resume_size=resume, headers=build_hf_headers(), expected_size=meta.size,
                tqdm_class=_progress_bar(_SHOW_PROGRESS[0]),
            )
        partial.replace(blob)
    if not pointer.exists():
        pointer.parent.mkdir(parents=True, exist_ok=True)
        _create_symlink(str(blob), str(pointer), new_blob=True)
    refs = storage / "refs" / "main"
    refs.parent.mkdir(parents=True, exist_ok=True)
    refs.write_text(meta.commit_hash)
    return pointer


_SHOW_PROGRESS = [True]
# Called as (bytes so far, total) while a file downloads (the control page's progress bar); set by `pull(on_progress=)`.
_PROGRESS_HOOK: list[Callable[[int, int | None], None] | None] = [None]


def _progress_bar(show: bool) -> Any:
    """A plain tqdm bar (size, speed, time left) that shows in a log or a pipe too, not only on a terminal."""
    import sys

    from tqdm import tqdm

    hook = _PROGRESS_HOOK[0]

    class Bar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = not show
            kwargs.setdefault("mininterval", 0.2 if sys.stderr.isatty() else 1.0)
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            if hook is not None:
                hook(int(kwargs.get("initial", 0) or 0), self.total)

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if hook is not None:
                self._seen = getattr(self, "_seen", int(getattr(self, "initial", 0) or 0)) + int(n or 0)
                hook(self._seen, self.total)
            return shown

    return Bar


def _check_disk(cache_dir: str | None, size: int | None, repo: str, file: str) -> None:
    from huggingface_hub import constants

    if not size:
        return
    folder = Path(cache_dir or constants.HF_HUB_CACHE)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    partial = sum(p.stat().st_size for p in folder.rglob("*.incomplete")) if folder.exists() else 0
    free = shutil.disk_usage(probe).free
    if free + partial < size:
        raise ModelError(
            f"{repo}:{file} needs {size / 2**30:.1f} GiB and {probe} has {free / 2**30:.1f} GiB free; free some space "
            "(or set HF_HUB_CACHE to a bigger disk) and pull again"
        )


def _verify(path: Path, size: int | None, etag: str | None, repo: str, file: str, gguf: bool) -> None:
    """Size, sha256 (the hub's etag of a large file is its sha256), GGUF header: a bad file is deleted."""
    problem = ""
    actual = path.stat().st_size
    if size and actual != size:
        problem = f"it has {actual} bytes, the hub says {size}"
    elif etag and re.fullmatch(r"[0-9a-f]{64}", etag.strip('"')):
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != etag.strip('"'):
            problem = "its sha256 does not match the hub's"
    if not problem and gguf:
        try:
            meta = read_metadata(path, ("general.architecture",))
            if "general.architecture" not in meta:
                problem = "it has no model architecture in its header"
        except GGUFError as exc:
            problem = str(exc)
    if problem:
        target = path.resolve()
        path.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise ModelError(f"{repo}:{file} was downloaded but is damaged ({problem}); it was deleted: pull it again")


class hub_errors:
    """Turns the hub library's exceptions into one actionable ModelError each."""

    def __init__(self, repo: str, file: str) -> None:
        self.repo, self.file = repo, file

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, ModelError):
            return False
        from huggingface_hub import errors

        what = f"{self.repo}:{self.file}" if self.file else self.repo
        page = f"https://huggingface.co/{self.repo}"
        if isinstance(exc, errors.GatedRepoError):
            raise ModelError(f"{self.repo} is gated: accept its licence on {page}, then set HF_TOKEN to a token of yours") from None
        if isinstance(exc, errors.RepositoryNotFoundError):
            raise ModelError(f"no repository {self.repo} on the hub (a private one needs HF_TOKEN); check the name") from None
        if isinstance(exc, errors.RevisionNotFoundError):
            raise ModelError(f"{self.repo} has no such revision") from None
        if isinstance(exc, errors.LocalEntryNotFoundError):
            raise ModelError(
                f"{what} is not downloaded and the hub cannot be reached (offline, or HF_HUB_OFFLINE is set); "
                "connect and pull again"
            ) from None
        if isinstance(exc, (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError)):
            raise ModelError(f"{self.repo} has no file {self.file}; see the files on {page}") from None
        if isinstance(exc, errors.HfHubHTTPError):
            status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
            if status >= 500 or status == 429:
                raise ModelError(f"the hub is not answering for {what} right now ({status}); pull again later: it resumes") from None
            raise ModelError(f"the hub refused {what}: {str(exc).splitlines()[0]}") from None
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise ModelError(f"the disk filled up while downloading {what}; free some space and pull again (it resumes)") from None
        if isinstance(exc, KeyboardInterrupt):
            raise ModelError(f"the download of {what} was interrupted; run the same pull again to resume it") from None
        if _network_error(exc):
            raise ModelError(f"cannot reach the hub for {what} ({exc}); check the connection (or HF_ENDPOINT) and pull again") from None
        return False


def _server_error(exc: BaseException) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
    return status >= 500 or status == 429


def _network_error(exc: BaseException) -> bool:
    try:
        import httpx
    except ImportError:  # pragma: no cover - huggingface_hub depends on it
        return isinstance(exc, ConnectionError)
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))
