"""The listener's yardstick: defects counted in a finished reply."""

from companion.text.review import review_reply


def test_the_defects_quoted_in_the_issue_are_counted():
    """A script line, a spoken stage direction, a repeat, a copy and a wrong self-name are each found."""
    reply = "I'm Robin, nice to meet you! I love tea so much today. I love tea so much today. Mike: hello there."
    review = review_reply(reply, ["(smiling) I'm Robin, nice to meet you!"], ["What a lovely day it is here."], "Mika")
    assert review.script_lines == ["Mike"]
    assert review.stage_directions == ["(smiling)"]
    assert review.wrong_names == ["Robin"]
    assert review_reply(reply, [], [], "Mika").repeated
    copied = review_reply("Well. What a lovely day it is here!", [], ["What a lovely day it is here."], "Mika")
    assert copied.copied and not copied.repeated


def test_a_sentence_that_differs_by_a_word_is_still_a_repeat():
    """Six words in a row in common make a repeat, not only identical sentences."""
    reply = "I'm so glad you're thinking of getting a cat. I'm really glad that you're thinking of getting a cat!"
    assert review_reply(reply, [], [], "Mika").repeated


def test_an_ordinary_reply_has_no_defects():
    """Times, labels, her own name and a list pass as they are."""
    reply = "I'm Mika! Let's meet at 10:30. Note: bring tea.\n1. Cups\n2. Biscuits"
    counts = review_reply(reply, [reply], ["Something else entirely, my friend."], "Mika").counts()
    assert not any(counts.values())
    assert review_reply("", [], [], "Mika").empty
