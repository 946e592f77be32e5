"""Answering a question about the person from their own remembered words (the small-model path)."""

from companion.memory.grounding import about_themselves, opening_for, second_person


def test_their_words_are_said_back_in_the_second_person():
    """"I", "my", "I'm", "I was" become "you", "your", "you're", "you were"."""
    assert second_person("I have two cats named Salt and Pepper.") == "you have two cats named Salt and Pepper."
    assert second_person("My sister lives in Porto, I'm proud of her") == "your sister lives in Porto, you're proud of her."
    assert second_person("I was a nurse") == "you were a nurse."


def test_a_direct_question_about_them_opens_with_their_answer():
    """'What are my cats called?' with 'I have two cats named...' remembered starts the reply with it."""
    remembered = [("I have two cats named Salt and Pepper.", 0.6), ("I work as a pharmacist.", 0.2)]
    assert opening_for("What are my cats called?", remembered) == "You told me you have two cats named Salt and Pepper."
    assert opening_for("Do you remember what I do for a living?", [("I work night shifts as a nurse.", 0.37)]) == (
        "You told me you work night shifts as a nurse."
    )


def test_a_greeting_before_their_words_is_not_quoted():
    """'Hi, my cat is called Pepper.' is said back from 'my cat', not as 'You told me Hi, your cat...'."""
    assert opening_for("What is my cat called?", [("Hi, my cat is called Pepper.", 0.6)]) == "You told me your cat is called Pepper."
    assert opening_for("What is my cat called?", [("Hey Mika! My cat is called Pepper.", 0.6)]) == "You told me your cat is called Pepper."
    assert opening_for("What is my favourite song?", [("Hey Jude is my favourite song.", 0.6)]) == (
        "You told me Hey Jude is your favourite song."  # a title, not a greeting: no comma after it
    )


def test_no_opening_without_a_clear_answer():
    """Small talk, questions about her, and remembered words on another subject get no opening."""
    remembered = [("I work as a pharmacist in Leeds.", 0.9)]
    assert opening_for("How are you today?", remembered) is None
    assert opening_for("What is your favourite colour?", remembered) is None
    assert opening_for("What is my dog called?", remembered) is None  # close, but no shared subject
    assert opening_for("What do I do for work?", [("I work as a pharmacist in Leeds.", 0.1)]) is None  # too far
    assert not about_themselves("I love my dog.")
