"""`companion model pull` against a local stand-in hub: progress, resume, checks and every failure as one message."""

import errno
from pathlib import Path

import pytest

from companion.models.catalog import load_catalog
from companion.models.hub import ModelError, ModelRef, parse_ref, pick_file, pull
from tests.models.hub_standin import StandInHub, tiny_gguf

REPO = "made-up/Tiny-GGUF"


@pytest.fixture
def hub():
    hub = StandInHub().start()
    hub.add(REPO, "tiny-Q8_0.gguf", tiny_gguf(2_000_000))
    hub.add(REPO, "tiny-Q4_K_M.gguf", tiny_gguf(3_000_000))
    hub.add(REPO, "mmproj-tiny-f16.gguf", tiny_gguf(1_000_000, "clip"))
    yield hub
    hub.stop()


def test_references_name_a_catalog_entry_a_file_or_a_quantisation():
    """NAME, ORG/REPO, ORG/REPO:FILE.gguf, ORG/REPO:QUANT and hf.co/ORG/REPO are understood; anything else is one clear error."""
    catalog = load_catalog()
    first = catalog[0]
    assert parse_ref(first.name, catalog) == ModelRef(first.repo, first.file, first.quant, first.mmproj, first.name)
    assert parse_ref("org/repo:model-Q5_K_M.gguf", catalog) == ModelRef("org/repo", file="model-Q5_K_M.gguf")
    assert parse_ref("hf.co/org/repo:Q8_0", catalog) == ModelRef("org/repo", quant="Q8_0")
    with pytest.raises(ModelError, match="catalog name"):
        parse_ref("not a model", catalog)


def test_a_bare_repo_gets_its_q4_k_m_file():
    """Without a file or quantisation, the Q4_K_M GGUF is chosen; projectors and split files are never the model."""
    files = ["README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-m-f16.gguf"]
    assert pick_file("r", files) == "m-Q4_K_M.gguf"
    assert pick_file("r", files, "Q8_0") == "m-Q8_0.gguf"
    with pytest.raises(ModelError, match="split"):
        pick_file("r", ["m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"])
    with pytest.raises(ModelError, match="no GGUF"):
        pick_file("r", ["model.safetensors"])


def test_pull_downloads_into_the_hub_cache_and_checks_the_file(hub, tmp_path):
    """ORG/REPO picks and downloads the Q4_K_M file into the hub cache layout; a second pull uses the cache."""
    [path] = pull(ModelRef(REPO), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    assert path.name == "tiny-Q4_K_M.gguf" and path.read_bytes() == hub.repos[REPO]["tiny-Q4_K_M.gguf"]
    assert "models--made-up--Tiny-GGUF" in str(path)
    gets = len(hub.ranges)
    assert pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False) == [path]
    assert len(hub.ranges) == gets  # nothing downloaded again


def test_a_download_cut_off_resumes_on_the_next_pull(hub, tmp_path):
    """A connection that drops mid-file fails the pull with one message; the next pull continues from where it stopped."""
    hub.add(REPO, "big-Q4_K_M.gguf", tiny_gguf(24_000_000))
    hub.cut_next = 15_000_000  # the hub library writes in 10 MiB pieces: one is on disk when the line drops
    with pytest.raises(ModelError, match="pull again"):
        pull(ModelRef(REPO, file="big-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    hub.unavailable = False
    [path] = pull(ModelRef(REPO, file="big-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    assert hub.ranges[-1] == f"bytes={10 * 2**20}-"  # resumed, not started over
    assert path.read_bytes() == hub.repos[REPO]["big-Q4_K_M.gguf"]


def test_a_damaged_download_is_deleted(hub, tmp_path):
    """A file whose bytes do not match the hub's sha256 is deleted, with a message saying to pull again."""
    hub.corrupt.add("tiny-Q4_K_M.gguf")
    with pytest.raises(ModelError, match="damaged.*pull it again"):
        pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    assert not list(Path(tmp_path).rglob("tiny-Q4_K_M.gguf")) and not [p for p in Path(tmp_path).rglob("*") if p.is_file() and p.stat().st_size > 100_000]


@pytest.mark.parametrize(
    "ref, expected",
    [
        (ModelRef("made-up/missing"), "no repository made-up/missing"),
        (ModelRef(REPO, file="nope.gguf"), "has no file nope.gguf"),
        (ModelRef("made-up/gated", file="x.gguf"), "gated: accept its licence.*HF_TOKEN"),
    ],
)
def test_hub_refusals_are_one_clear_message(hub, tmp_path, ref, expected):
    """A missing repo, a missing file and a gated repo each say what to do."""
    hub.add("made-up/gated", "x.gguf", tiny_gguf(1000))
    hub.gated.add("made-up/gated")
    with pytest.raises(ModelError, match=expected):
        pull(ref, cache_dir=str(tmp_path), endpoint=hub.url, progress=False)


def test_a_full_disk_is_reported_before_and_during_the_download(hub, tmp_path, monkeypatch):
    """Too little free space stops the pull before it starts; ENOSPC while writing says to free space and pull again."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 1000))
    with pytest.raises(ModelError, match="needs .* GiB .* free"):
        pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    monkeypatch.undo()

    import huggingface_hub.file_download as fd

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fd, "http_get", full)
    with pytest.raises(ModelError, match="disk filled up.*pull again"):
        pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)


def test_offline_uses_the_cache_and_says_what_is_missing(hub, tmp_path, monkeypatch):
    """With HF_HUB_OFFLINE=1 a pulled model is found in the cache; one never pulled is a clear error."""
    [path] = pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pull(ModelRef(REPO, file="tiny-Q4_K_M.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False) == [path]
    with pytest.raises(ModelError, match="not downloaded"):
        pull(ModelRef(REPO, file="tiny-Q8_0.gguf"), cache_dir=str(tmp_path), endpoint=hub.url, progress=False)
    hub.start()  # the fixture stops it again
