"""Reading a GGUF header without loading the model."""

import struct
from pathlib import Path

import pytest

from companion.llm.gguf_meta import GGUFError, read_metadata


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf(pairs: list[bytes]) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs)) + b"".join(pairs)


def _kv_string(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", 8) + _string(value)


def _kv_u32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<I", 4) + struct.pack("<I", value)


def _kv_string_array(key: str, values: list[str]) -> bytes:
    return _string(key) + struct.pack("<I", 9) + struct.pack("<IQ", 8, len(values)) + b"".join(_string(v) for v in values)


def test_reads_strings_and_numbers_and_skips_token_tables(tmp_path: Path):
    """Scalars and strings come back; an array of tokens before the template is skipped correctly."""
    path = tmp_path / "m.gguf"
    path.write_bytes(_gguf([
        _kv_string("general.architecture", "llama"),
        _kv_u32("llama.context_length", 8192),
        _kv_string_array("tokenizer.ggml.tokens", ["<s>", "hello", "world"]),
        _kv_string("tokenizer.chat_template", "{% for m in messages %}{{ tools }}{% endfor %}"),
    ]))
    meta = read_metadata(path)
    assert meta["general.architecture"] == "llama"
    assert meta["llama.context_length"] == 8192
    assert "tools" in meta["tokenizer.chat_template"]


def test_reads_the_packaged_model_header():
    """The embedded SmolLM2 GGUF has a ChatML template and the llama architecture."""
    from companion.llm.gguf_meta import default_gguf_path

    meta = read_metadata(default_gguf_path(), ("general.architecture", "tokenizer.chat_template"))
    assert meta["general.architecture"] == "llama"
    assert "<|im_start|>" in meta["tokenizer.chat_template"]


def test_not_a_gguf_and_truncated_files_are_clear_errors(tmp_path: Path):
    """A wrong file and a cut-off download say what is wrong, not a struct traceback."""
    wrong = tmp_path / "a.gguf"
    wrong.write_bytes(b"PK\x03\x04 zip file")
    with pytest.raises(GGUFError, match="not a GGUF"):
        read_metadata(wrong)
    cut = tmp_path / "b.gguf"
    cut.write_bytes(_gguf([_kv_string("general.name", "x" * 100)])[:40])
    with pytest.raises(GGUFError, match="truncated"):
        read_metadata(cut)
    with pytest.raises(GGUFError, match="cannot read"):
        read_metadata(tmp_path / "missing.gguf")
