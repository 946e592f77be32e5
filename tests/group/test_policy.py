"""Who speaks next in a group of characters."""

import random

import pytest

from companion.group.policy import GroupMember, GroupPolicy

LUNA, KAI = GroupMember("Luna", 0.5, host=True), GroupMember("Kai", 0.5)


def test_a_character_named_answers_first_in_the_order_named():
    """Naming a character makes it answer, before anyone else; naming both gives both, in order."""
    policy = GroupPolicy([LUNA, KAI], rng=random.Random(0))
    assert policy.answer_person("Kai, what do you think?") == ["Kai"]
    assert policy.answer_person("kai and luna: which of you is better at chess?") == ["Kai", "Luna"]
    assert policy.answer_person("I love the moon (luna in Spanish)") == ["Luna"]  # a word, not part of one
    assert policy.named("Kaiser rolls are great") == []  # a longer word does not name Kai


def test_a_question_to_all_of_them_is_answered_by_each():
    """"Which of you...?" and "you two" get an answer from every character, the most talkative first."""
    policy = GroupPolicy([GroupMember("Luna", 0.2, host=True), GroupMember("Kai", 0.7)], rng=random.Random(5))
    for text in ("Which of you is better at chess?", "What are you two up to?", "Hi everyone!"):
        assert policy.answer_person(text) == ["Kai", "Luna"]
    assert policy.answer_person("Which of you is better at chess?", last_speaker="Kai") == ["Luna", "Kai"]


def test_natural_order_follows_talkativeness_and_someone_always_answers():
    """Unnamed, the talkative join more often than the quiet, and the host answers when nobody else would."""
    chatty, shy = GroupMember("Ana", 0.9, host=False), GroupMember("Bo", 0.1, host=True)
    policy = GroupPolicy([chatty, shy], rng=random.Random(1))
    answers = [policy.answer_person("how is it going?") for _ in range(400)]
    assert all(answers)
    first_ana = sum(a[0] == "Ana" for a in answers)
    assert first_ana > 300
    assert sum("Bo" in a for a in answers) < 150
    silent = GroupPolicy([GroupMember("Ana", 0.0), GroupMember("Bo", 0.0, host=True)], rng=random.Random(2))
    assert silent.answer_person("hello?") == ["Bo"]


def test_nobody_speaks_twice_in_a_row_unless_named():
    """The one who just spoke is left out of the natural order, but answers when named."""
    policy = GroupPolicy([GroupMember("Luna", 1.0, host=True), GroupMember("Kai", 0.0)], rng=random.Random(3))
    assert policy.answer_person("and then?", last_speaker="Luna") == ["Kai"]  # Luna always joins, but just spoke
    assert policy.answer_person("Luna, and then?", last_speaker="Luna") == ["Luna"]
    assert policy.answer_character("Luna", "what do you say, Luna?", exchanges=0) is None  # not herself; Kai never joins unasked
    assert policy.answer_character("Kai", "Luna, you are wrong", exchanges=0) == "Luna"


def test_banter_stops_at_its_limit_and_in_quiet_mode():
    """Characters answer each other at most ``banter`` times before a person speaks; quiet mode stops it at once."""
    policy = GroupPolicy([GroupMember("Luna", 1.0, host=True), GroupMember("Kai", 1.0)], banter=2, rng=random.Random(4))
    assert policy.answer_character("Luna", "Kai, chess is easy.", exchanges=0) == "Kai"
    assert policy.answer_character("Kai", "Luna, it is not.", exchanges=1) == "Luna"
    assert policy.answer_character("Luna", "Kai, it is.", exchanges=2) is None
    assert policy.answer_character("Luna", "Kai, it is.", exchanges=0, quiet=True) is None
    lone = GroupPolicy([GroupMember("Luna", 1.0)])
    assert lone.answer_character("Luna", "anyone?", exchanges=0) is None


def test_the_talkative_start_something_more_often():
    """In a quiet moment one of them starts, chosen by talkativeness; nobody talkative: the host."""
    policy = GroupPolicy([GroupMember("Luna", 0.1, host=True), GroupMember("Kai", 0.9)], rng=random.Random(6))
    starts = [policy.starter() for _ in range(300)]
    assert 240 < starts.count("Kai") < 300
    assert GroupPolicy([GroupMember("Luna", 0.0), GroupMember("Kai", 0.0, host=True)]).starter() == "Kai"


def test_a_group_with_two_characters_of_one_name_is_refused():
    """Two cards with the same name cannot be told apart: a clear error names them."""
    with pytest.raises(ValueError, match="share a name"):
        GroupPolicy([GroupMember("Luna"), GroupMember("luna")])
