"""Episodic memory rules, pure."""

import time

from companion.memory.episodes import age_words, grounded, is_change, topic_key, worth_remembering
from companion.memory.extract import forget_intent, forget_topic


def test_statements_are_kept_questions_and_greetings_are_not():
    """A person's statements are kept in their words; questions, greetings and two-word replies are not."""
    assert worth_remembering("My cat is called Pepper, she is black and white.")
    assert not worth_remembering("What is my cat called?")
    assert not worth_remembering("Hi there, Mika!")
    assert not worth_remembering("ok sure")


def test_requests_and_unmarked_questions_to_her_are_not_kept_as_their_words():
    """'Tell me something funny.' or a transcript's 'what do you think about space travel' says nothing about them."""
    for asked in (
        "Tell me something funny.", "Please sing me a song about cats", "Hey Mika, tell me a joke.",
        "What do you think about space travel", "Can you cheer me up a bit", "Let's play a game together now",
        "ok so how about we play chess",
    ):
        assert not worth_remembering(asked), asked
    for told in (
        "When I was a kid I had a dog named Rex.", "Tell you what, I really love pizza.", "My sister can sing really well.",
        "Hey Mika, my cat is called Pepper.", "I can play the guitar a little now.",
    ):
        assert worth_remembering(told), told


def test_topics_and_changes_are_recognised():
    """'my favourite colour is now lavender' names the topic and says it changed; 'I like dogs' names none."""
    assert topic_key("My favourite colour is teal.") == topic_key("My favourite colour is now lavender.") == "favourite colour"
    assert is_change("My favourite colour is now lavender.") and not is_change("My favourite colour is teal.")
    assert topic_key("I work as a nurse.") == topic_key("I changed jobs, I'm a teacher now.") == "job"
    assert topic_key("I live in Lyon.") == topic_key("I moved to Berlin.") == "home"
    assert topic_key("I like dogs a lot.") is None


def test_only_facts_grounded_in_the_persons_words_are_kept():
    """A rambling fact about the character is rejected; the person's own fact, even paraphrased, is kept."""
    said = "My cat is called Biscuit, she's a grumpy ginger tabby."
    assert grounded("Robin's cat Biscuit is a ginger tabby.", said, ["Robin"])
    assert grounded("Robin has a grumpy cat named Biscuit.", said, ["Robin"])
    assert not grounded("Mika loves sailing on the ocean at sunrise.", said, ["Mika", "Robin"])
    assert not grounded("Robin is Robin.", said, ["Robin"])  # nothing left to ground


def test_forget_requests_name_their_topic():
    """'forget my peanut allergy' is a topic forget; 'I forget my keys' is not a request."""
    assert forget_intent("Please forget my peanut allergy.") == "topic"
    assert forget_topic("Please forget my peanut allergy.") == "peanut allergy"
    assert forget_intent("I forget my keys all the time") is None
    assert forget_intent("forget everything about me") == "all"


def test_ages_read_naturally():
    """Recalled words say when they were said."""
    now = time.time()
    assert [age_words(now - d * 86400, now) for d in (0, 1, 3, 21, 90)] == ["today", "yesterday", "3 days ago", "3 weeks ago", "3 months ago"]
