"""A BERT sentence encoder in NumPy, for the embedded memory model (all-MiniLM-L6-v2) and models like it.

Why not sentence-transformers: importing it (transformers, torch) costs about 7 s in every new process, which a
one-shot ``companion chat`` or a restarted companion pays before its first word. The model itself is six small
layers: NumPy runs a sentence through it in milliseconds, and the import is free. Same weights, same tokenizer
(``tokenizers``), same mean pooling and normalisation, so the vectors match sentence-transformers' to float
precision and memories stored by either are recalled by the other.

Only what a sentence-transformers folder of a plain BERT with mean pooling holds is read; anything else
(another architecture, CLS pooling, no safetensors file) is refused with ``NotPlainBert`` so the caller can use
sentence-transformers instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BertEncoder", "NotPlainBert"]


class NotPlainBert(Exception):
    """The folder is not a BERT with mean pooling in safetensors: use sentence-transformers for it."""


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to about 1e-7 (Abramowitz and Stegun 7.1.26): exact GELU without SciPy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class BertEncoder:
    """``encode(texts)`` -> unit vectors, one row per text, as sentence-transformers gives for the same folder."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotPlainBert(f"{folder}: {exc}") from None
        weights_file = folder / "model.safetensors"
        if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens") or not weights_file.exists():
            raise NotPlainBert(f"{folder} is not a BERT with mean pooling in model.safetensors")
        if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise NotPlainBert(f"{folder}: {config.get('hidden_act')} / {config.get('position_embedding_type')} not supported")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.w: dict[str, np.ndarray] = {k.removeprefix("bert."): v for k, v in load_file(str(weights_file)).items()}
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        max_len = min(int(config.get("max_position_embeddings", 512)), self._max_seq_length(folder))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()

    @staticmethod
    def _max_seq_length(folder: Path) -> int:
        try:
            return int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"])
        except (OSError, ValueError, KeyError):
            return 512

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            vector = self._pooled(np.asarray(encoding.ids), np.asarray(encoding.type_ids))
            out[i] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return out

    def _pooled(self, ids: np.ndarray, types: np.ndarray) -> np.ndarray:
        """One text, unpadded (so no attention mask is needed): the mean of its last hidden states."""
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)]
        x = x + w["embeddings.token_type_embeddings.weight"][types]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        for n in range(self.layers):
            x = self._layer(x, f"encoder.layer.{n}.")
        return x.mean(0)

    def _layer(self, x: np.ndarray, p: str) -> np.ndarray:
        w = self.w

        def dense(h: np.ndarray, name: str) -> Any:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        tokens, hidden = x.shape
        size = hidden // self.heads

        def split(h: np.ndarray) -> np.ndarray:
            return h.reshape(tokens, self.heads, size).transpose(1, 0, 2)

        q, k, v = (split(dense(x, f"attention.self.{name}")) for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        attended = dense(context.transpose(1, 0, 2).reshape(tokens, hidden), "attention.output.dense")
        x = _layer_norm(attended + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
        inner = _gelu(dense(x, "intermediate.dense"))
        return _layer_norm(dense(inner, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
