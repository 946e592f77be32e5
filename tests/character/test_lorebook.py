from companion.character.lorebook import Lorebook


def book(entries, **kw):
    return Lorebook.from_dict({"entries": entries, **kw}, "test")


def names(activated):
    return [e.name for e in activated.all]


def test_keys_activate_within_scan_depth_only():
    """An entry fires when its key is in the last scan_depth messages, not older ones."""
    b = book([{"name": "dragon", "keys": ["dragon"], "content": "Dragons breathe fire."}], scan_depth=2)
    assert names(b.activate(["a dragon!", "hi", "hello"])) == []
    assert names(b.activate(["hi", "the DRAGON comes"])) == ["dragon"]


def test_case_sensitivity_regex_and_disabled():
    """case_sensitive, use_regex (plain and /re/i) and enabled=false are honoured."""
    b = book([
        {"name": "cs", "keys": ["Paris"], "content": "c", "case_sensitive": True},
        {"name": "re", "keys": [r"\bcat(s)?\b"], "content": "r", "use_regex": True},
        {"name": "re_i", "keys": ["/^hello/i"], "content": "h", "use_regex": True},
        {"name": "off", "keys": ["cat"], "content": "o", "enabled": False},
    ])
    assert names(b.activate(["i love paris and cats"])) == ["re"]
    assert sorted(names(b.activate(["HELLO Paris"]))) == ["cs", "re_i"]


def test_selective_needs_a_secondary_key_and_constant_always_fires():
    """Selective entries need a primary and a secondary key; constant entries need none."""
    b = book([
        {"name": "sel", "keys": ["sword"], "secondary_keys": ["magic"], "selective": True, "content": "s"},
        {"name": "always", "keys": [], "constant": True, "content": "a"},
    ])
    assert names(b.activate(["a sword"])) == ["always"]
    assert sorted(names(b.activate(["a magic sword"]))) == ["always", "sel"]


def test_order_budget_priority_and_position():
    """Entries are ordered by insertion_order, dropped by low priority past the budget, split by position."""
    b = book([
        {"name": "late", "keys": ["x"], "content": "L" * 40, "insertion_order": 30, "priority": 5},
        {"name": "early", "keys": ["x"], "content": "E" * 40, "insertion_order": 10, "priority": 5},
        {"name": "cheap_low", "keys": ["x"], "content": "C" * 40, "insertion_order": 20, "priority": 1},
        {"name": "after", "keys": ["x"], "content": "A" * 4, "insertion_order": 5, "priority": 9, "position": "after_char"},
    ], token_budget=22)
    got = b.activate(["x"])
    assert [e.name for e in got.before_char] == ["early", "late"]
    assert [e.name for e in got.after_char] == ["after"]


def test_recursive_scanning_follows_activated_content():
    """With recursive scanning, an activated entry's text can trigger another."""
    entries = [
        {"name": "a", "keys": ["castle"], "content": "The castle belongs to the queen."},
        {"name": "b", "keys": ["queen"], "content": "The queen is kind."},
    ]
    assert names(book(entries).activate(["the castle"])) == ["a"]
    assert sorted(names(book(entries, recursive_scanning=True).activate(["the castle"]))) == ["a", "b"]


def test_lore_is_placed_around_the_character_definition():
    """Always-on lore sits before/after the description as the card says; keyword lore goes with the newest message."""
    from companion.character.persona import character_from_dict
    from companion.core.prompt import NewMessage, build_messages

    c = character_from_dict({"spec": "chara_card_v2", "data": {"name": "Mika", "description": "DESCRIPTION", "character_book": {"entries": [
        {"keys": [], "content": "BEFORE", "position": "before_char", "constant": True},
        {"keys": [], "content": "AFTER", "position": "after_char", "constant": True},
        {"keys": ["moon"], "content": "MOONLORE", "position": "before_char"},
    ]}}})
    messages = build_messages(c, [], NewMessage("look at the moon", "Bob"), conversation_start=False)
    system = messages[0]["content"]
    assert system.index("BEFORE") < system.index("DESCRIPTION") < system.index("AFTER")
    # lore a keyword brought in travels with the newest message: the system prompt stays the same (cached) prefix
    assert "MOONLORE" not in system and "MOONLORE" in messages[-1]["content"]
    quiet = build_messages(c, [], NewMessage("hello", "Bob"), conversation_start=False)
    assert quiet[0]["content"] == system and "MOONLORE" not in quiet[-1]["content"]


def test_catastrophic_regex_is_cut_off_and_disabled(caplog):
    """A catastrophic key stops at the time limit, is disabled with a warning, and other entries still fire."""
    import time

    b = book([
        {"name": "audit", "keys": ["/(a+)+$/"], "content": "y", "use_regex": True},  # the audit's repro
        {"name": "redos", "keys": ["/(a|aa)+$/"], "content": "x", "use_regex": True},
        {"name": "cat", "keys": ["cat"], "content": "c"},
    ])
    message = "a" * 40 + "! cat"
    started = time.perf_counter()
    assert names(b.activate([message])) == ["cat"]
    first = time.perf_counter() - started
    assert first < 1.0  # unbounded, this pattern needs minutes for 40 characters
    assert "is disabled" in caplog.text
    started = time.perf_counter()
    b.activate([message])
    assert time.perf_counter() - started < first / 2  # the disabled key is no longer tried
    assert b.uses_regex
