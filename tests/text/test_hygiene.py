"""Reply hygiene for small models, on scripted streams split every which way."""

import pytest

from companion.text.hygiene import ReplyHygiene, stop_strings


def clean(text: str, step: int = 3, user: str = "Sam", char: str = "Aiko") -> tuple[str, bool]:
    hygiene = ReplyHygiene([user], char)
    out = ""
    for i in range(0, len(text), step):
        out += hygiene.feed(text[i : i + step])
        if hygiene.stopped:
            break
    out += hygiene.finish()
    return out, hygiene.stopped


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_the_other_speakers_turn_ends_the_reply(step):
    """'\\nSam:', '\\nUser:' and the character's own next turn stop the reply; what came before is kept."""
    assert clean("Sure thing, I will.\nSam: and then what?", step) == ("Sure thing, I will.", True)
    assert clean("Happy to help!\nUser: thanks", step) == ("Happy to help!", True)
    assert clean("Yes.\n\n**Aiko**: and another thing", step) == ("Yes.\n", True)


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_template_end_markers_end_the_reply(step):
    """A chat-template marker written as text is never spoken and nothing after it is."""
    assert clean("See you soon!<|im_end|>\n<|im_start|>user\nbye", step) == ("See you soon!", True)
    assert clean("Bye</s>junk", step) == ("Bye", True)


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_a_leading_name_prefix_is_removed(step):
    """'Aiko: Hi!' is spoken as 'Hi!'; names that only start like hers are left alone."""
    assert clean("Aiko: Hi there!", step)[0] == "Hi there!"
    assert clean("**Aiko**: hey", step)[0] == "hey"
    assert clean("Assistant: Hello.", step)[0] == "Hello."
    assert clean("Aikon is a word I made up.", step)[0] == "Aikon is a word I made up."
    assert clean("Ai is short for her name.", step)[0] == "Ai is short for her name."


def test_runaway_repetition_is_cut_after_the_first_copy():
    """The looping seen on the embedded model stops; ordinary emphasis passes."""
    text, stopped = clean("Biscuit is a grumpy, very, very, grinning, grinning, grinning, grinning, grinning...", 2)
    assert stopped and text.count("grinning") == 1
    text, stopped = clean("I am Aiko. I am Aiko. I am Aiko. I am Aiko. I am Aiko.", 4)
    assert stopped and text.count("Aiko") <= 2
    assert clean("That is very, very good news!", 2) == ("That is very, very good news!", False)
    assert clean("ha ha ha, that's funny", 1) == ("ha ha ha, that's funny", False)


def test_ordinary_replies_pass_unchanged_and_promptly():
    """A normal reply comes out the same, and no more than a word is held back while streaming."""
    reply = "Hello there! I love tea, especially jasmine.\nWhat about you, Sam?"
    hygiene = ReplyHygiene(["Sam"], "Aiko")
    passed = ""
    for i, ch in enumerate(reply):
        passed += hygiene.feed(ch)
        if i > 20:
            held = reply[: i + 1][len(passed):]
            assert len(held.split()) <= 2, held
    assert passed + hygiene.finish() == reply


def test_stop_strings_name_both_speakers_and_template_markers():
    """Providers get the turn starts of the user and the character, and the end markers."""
    stops = stop_strings(["Sam"], "Aiko")
    assert "\nSam:" in stops and "\nAiko:" in stops and "\nUser:" in stops and "<|im_end|>" in stops

