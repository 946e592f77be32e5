import random

from companion.character.macros import expand


def test_char_user_and_legacy_placeholders():
    """{{char}}, {{user}}, <BOT> and <USER> are replaced, case-insensitively."""
    assert expand("{{char}} greets {{User}}; <BOT> and <user>", char="Mika", user="Bob") == "Mika greets Bob; Mika and Bob"


def test_comments_are_removed_and_unknown_macros_kept():
    """{{// ...}} and {{comment:...}} vanish; unknown macros like {{original}} stay for later stages."""
    assert expand("a{{// secret note}}b{{comment: x}}c {{original}}", char="c", user="u") == "abc {{original}}"


def test_pick_is_stable_per_conversation_random_is_not():
    """{{pick}} gives the same choice for the same conversation; {{random}} varies."""
    text = "I like {{pick:red,green,blue,yellow,purple}}."
    same = {expand(text, char="c", user="u", seed="conv-1") for _ in range(20)}
    assert len(same) == 1
    across = {expand(text, char="c", user="u", seed=f"conv-{i}") for i in range(30)}
    assert len(across) > 1
    rolls = {expand("{{random:a,b,c,d}}", char="c", user="u", rng=random.Random(i)) for i in range(30)}
    assert rolls == {"a", "b", "c", "d"}


def test_roll_and_double_colon_options():
    """{{roll:N}}/{{roll:dN}} give 1..N; {{random::a::b}} syntax works."""
    values = {int(expand("{{roll:d6}}", char="c", user="u", rng=random.Random(i))) for i in range(100)}
    assert values == set(range(1, 7))
    assert expand("{{roll:3}}", char="c", user="u", rng=random.Random(1)) in {"1", "2", "3"}
    assert expand("{{random::x y::z}}", char="c", user="u", rng=random.Random(0)) in {"x y", "z"}
    assert expand("{{reverse:abc}}", char="c", user="u") == "cba"
