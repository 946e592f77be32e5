"""Saved llama.cpp slot states: which slot a request takes, and the bounded folder of states."""

import os
import time
from pathlib import Path

from companion.llm.slot_state import SlotPicker, SlotStates, conversation_key, model_id, prefix_key


def never(_key: str) -> bool:
    return False


def test_a_conversation_goes_back_to_the_slot_that_holds_it():
    """The slot that served a conversation serves it again, without loading anything."""
    picker = SlotPicker(2)
    slot, restore = picker.acquire("conversation:a", never)
    picker.release(slot, holds="conversation:a")
    other, _ = picker.acquire("conversation:b", never)
    picker.release(other, holds="conversation:b")
    assert other != slot
    assert picker.acquire("conversation:a", never) == (slot, None)


def test_a_saved_conversation_is_restored_into_the_least_recently_used_slot():
    """A conversation with a state on disk and no slot holding it loads that state into the oldest idle slot."""
    picker = SlotPicker(2)
    first, _ = picker.acquire("conversation:a", never)
    picker.release(first, holds="conversation:a")
    second, _ = picker.acquire("conversation:b", never)
    picker.release(second, holds="conversation:b")
    slot, restore = picker.acquire("conversation:c", lambda k: k == "conversation:c")
    assert (slot, restore) == (first, "conversation:c")


def test_a_new_conversation_starts_from_the_warmed_prefix():
    """A conversation never saved takes the slot holding the stable prompt start, or loads that start from disk."""
    picker = SlotPicker(2)
    warm, _ = picker.acquire("prefix:x", never)
    picker.release(warm, holds="prefix:x")
    assert picker.acquire("conversation:new", never, fallback="prefix:x") == (warm, None)
    cold = SlotPicker(2)
    assert cold.acquire("conversation:new", lambda k: k == "prefix:x", fallback="prefix:x") == (0, "prefix:x")


def test_busy_slots_are_never_handed_out():
    """With every slot busy there is no slot to pin (llama.cpp queues the request itself)."""
    picker = SlotPicker(2)
    picker.acquire("conversation:a", never)
    picker.acquire("conversation:b", never)
    assert picker.acquire("conversation:a", never) is None


def test_a_failed_request_leaves_its_slot_unclaimed():
    """A slot released without a known content is not offered as holding the conversation."""
    picker = SlotPicker(1)
    slot, _ = picker.acquire("conversation:a", never)
    picker.release(slot, holds=None)
    assert picker.acquire("conversation:a", lambda k: True) == (slot, "conversation:a")


def test_keys_name_files_per_model(tmp_path: Path):
    """The same key has another file for another model, and file names are plain (llama.cpp refuses folders)."""
    a = SlotStates(tmp_path, "aaaa", 1 << 20)
    b = SlotStates(tmp_path, "bbbb", 1 << 20)
    key = conversation_key("discord:123/456")
    assert a.filename(key) != b.filename(key)
    assert "/" not in a.filename(key) and a.filename(key).endswith(".bin")
    assert prefix_key([{"role": "system", "content": "x"}]) != prefix_key([{"role": "system", "content": "y"}])


def test_a_changed_model_file_is_another_model(tmp_path: Path):
    """Rewriting the model file changes its id, so states saved for the old file are never restored."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 10)
    before = model_id(model)
    model.write_bytes(b"GGUF" + b"\1" * 12)
    assert model_id(model) != before


def test_the_folder_stays_within_its_bound(tmp_path: Path):
    """Least recently used states go first; other models' states and month-old ones always go."""
    states = SlotStates(tmp_path, "mine", 2500)
    now = time.time()
    for i, key in enumerate(["old", "mid", "new"]):
        path = states.path(key)
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - 100 + i, now - 100 + i))
    stale = states.path("stale")
    stale.write_bytes(b"x")
    os.utime(stale, (now - 40 * 86400, now - 40 * 86400))
    other = tmp_path / "othermodel-abc.bin"
    other.write_bytes(b"x" * 10)
    removed = states.evict(now)
    assert not states.has("old") and states.has("mid") and states.has("new")
    assert not stale.exists() and not other.exists()
    assert len(removed) == 3


def test_a_state_is_only_there_once_written_whole(tmp_path: Path):
    """A state is saved under a temporary name and appears under its own only when complete."""
    states = SlotStates(tmp_path, "mine", 1 << 20)
    (tmp_path / states.temp_name("k")).write_bytes(b"state")
    assert not states.has("k")
    states.commit("k")
    assert states.has("k") and states.path("k").read_bytes() == b"state"


def test_each_character_of_a_group_starts_from_her_own_warmed_prefix():
    """Two system prompts warmed: a new conversation picks the one its prompt begins with, not the last warmed."""
    from companion.llm.llamacpp import LlamaCppLLM

    llm = LlamaCppLLM()
    luna = [{"role": "system", "content": "You are Luna."}]
    kai = [{"role": "system", "content": "You are Kai."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    for start in (luna, kai):  # what warm() records, in the order the characters start
        llm._prefix = prefix_key(start)
        llm._prefixes[llm._prefix] = len(start)
    assert llm._prefix_for([*luna, {"role": "user", "content": "Sam: hello"}]) == prefix_key(luna)
    assert llm._prefix_for([*kai, {"role": "user", "content": "Sam: hello"}]) == prefix_key(kai)
    assert llm._prefix_for([{"role": "system", "content": "someone else"}, {"role": "user", "content": "x"}]) == prefix_key(kai)
