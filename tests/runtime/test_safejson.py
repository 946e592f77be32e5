import json

import pytest

from companion.runtime.safejson import JSONInputError, depth, loads


def test_depth_counts_nesting_without_recursion():
    """depth() measures nested lists/objects, even far beyond Python's recursion limit."""
    assert depth(5) == 0 and depth({"a": [1, {"b": []}]}) == 4
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert depth(deep) == 5001


@pytest.mark.parametrize("levels", [65, 1500, 100_000])
def test_deep_documents_are_refused_with_a_clear_error(levels):
    """Nesting past the limit is a JSONInputError naming the limit, never a RecursionError."""
    with pytest.raises(JSONInputError, match="nested too deeply"):
        loads("[" * levels + "]" * levels)


def test_ordinary_json_and_bad_json():
    """Ordinary documents load as json.loads would; broken ones say where they broke."""
    doc = {"a": [1, 2, {"b": "c"}], "d": None}
    assert loads(json.dumps(doc)) == doc
    with pytest.raises(JSONInputError, match="line 1, column"):
        loads('{"a": ')
