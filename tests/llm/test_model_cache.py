"""Preparing the embedded model for transformers: two processes at once never spoil each other's cache."""

from pathlib import Path
from types import SimpleNamespace

import pytest

import companion.llm.transformers as tf
from companion.llm.gguf_meta import DEFAULT_MODEL_NAME


class _Saved:
    """Stands in for a loaded model or tokenizer: saving writes the files the cache check looks for."""

    def __init__(self, name: str, during_save=None) -> None:
        self.name, self.during_save = name, during_save

    def save_pretrained(self, folder: Path) -> None:
        if self.during_save is not None:
            self.during_save()
        (Path(folder) / self.name).write_text("x")


def _stack(monkeypatch, during_save=None) -> None:
    model = _Saved("model.safetensors", during_save)
    tokenizer = _Saved("config.json")
    transformers = SimpleNamespace(
        AutoTokenizer=SimpleNamespace(from_pretrained=lambda *a, **k: tokenizer),
        AutoModelForCausalLM=SimpleNamespace(from_pretrained=lambda *a, **k: model),
    )
    monkeypatch.setattr(tf, "_import_stack", lambda: (None, transformers))


def test_another_process_finishing_first_keeps_its_folder(tmp_path, monkeypatch):
    """When another process puts the model in place while this one writes, its folder stays and ours is dropped."""
    target = tmp_path / "models" / DEFAULT_MODEL_NAME

    def other_process_finishes() -> None:
        target.mkdir(parents=True)
        (target / "config.json").write_text("theirs")
        (target / "model.safetensors").write_text("theirs")

    _stack(monkeypatch, other_process_finishes)
    assert tf.convert_default_model(tmp_path) == target
    assert (target / "model.safetensors").read_text() == "theirs"
    assert sorted(p.name for p in target.parent.iterdir()) == [DEFAULT_MODEL_NAME]  # no partial folder left


def test_a_folder_left_without_weights_is_replaced(tmp_path, monkeypatch):
    """A folder from a crash (no weights in it) is replaced by the prepared model."""
    target = tmp_path / "models" / DEFAULT_MODEL_NAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("half")
    _stack(monkeypatch)
    assert tf.convert_default_model(tmp_path) == target
    assert (target / "model.safetensors").read_text() == "x"
    assert sorted(p.name for p in target.parent.iterdir()) == [DEFAULT_MODEL_NAME]


def test_a_prepared_model_is_not_prepared_again(tmp_path, monkeypatch):
    """A complete folder is used as it is: the library is not even loaded."""
    target = tmp_path / "models" / DEFAULT_MODEL_NAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_text("w")
    monkeypatch.setattr(tf, "_import_stack", lambda: pytest.fail("loaded the library for a cached model"))
    assert tf.convert_default_model(tmp_path) == target
