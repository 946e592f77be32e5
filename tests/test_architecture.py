"""ARCHITECTURE.md stays true: every package it names exists, every package is named, every file it cites is there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "companion"
TEXT = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def mapped() -> set[str]:
    """The packages and root modules the code map has a heading for."""
    found = set()
    for heading in re.findall(r"^### (.+)$", TEXT, flags=re.M):
        found.update(re.findall(r"`companion/([\w.]+)`", heading))
    return found


def test_every_package_it_names_exists():
    """A heading of the code map that names a missing package or module is an error."""
    names = mapped()
    assert names, "the code map has no headings"
    missing = [n for n in names if not (PACKAGE / n).exists()]
    assert missing == []


def test_every_package_is_named():
    """Each package and root module of companion/ (but __init__ and __main__) has its entry in the code map."""
    tops = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists() or (p.suffix == ".py" and p.stem not in ("__init__", "__main__"))}
    assert tops - mapped() == set()


def test_files_cited_in_the_walkthroughs_exist():
    """Every `package/module.py` the text cites (the path of an utterance, of a chat message) is a real file."""
    cited = set(re.findall(r"`((?:[a-z_]+/)+[a-z_]+\.py)`", TEXT))
    assert len(cited) > 15
    missing = sorted(c for c in cited if not (PACKAGE / c).exists() and not (ROOT / c).exists())
    assert missing == []


def test_the_layers_match_the_layering_test():
    """The layer diagram lists the same packages, in the same order, as tests/test_layering.py enforces."""
    from tests.test_layering import LAYERS

    diagram = TEXT.split("## Layers", 1)[1].split("```")[1]
    rows = [line.split("  ")[0].split() for line in diagram.strip().splitlines()]
    assert [tuple(r) for r in reversed(rows)] == LAYERS
