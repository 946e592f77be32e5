"""Reply hygiene for small models, on scripted streams split every which way."""

import pytest

from companion.text.hygiene import ReplyHygiene, stop_strings


def clean(
    text: str, step: int = 3, user: str = "Sam", char: str = "Aiko", recent: tuple[str, ...] = (), message: str = ""
) -> tuple[str, bool]:
    """What a listener hears of ``text`` (streamed ``step`` characters at a time) and whether the reply was ended."""
    hygiene = ReplyHygiene([user], char, recent_replies=recent, message=message)
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



def say(text: str, step: int, recent: tuple[str, ...] = ()) -> tuple[str, bool]:
    """What a listener hears of ``text`` from Mika talking with Robin."""
    return clean(text, step, "Robin", "Mika", recent)


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_a_script_turn_ends_the_reply_whatever_the_name(step):
    """'Mike: ...' after a sentence or at a line start ends the reply though nobody called Mike is in the chat."""
    assert say("That sounds fun. Mike: Yeah it does, I love it.", step) == ("That sounds fun. ", True)
    assert say("Sure!\nJohn Smith: what about me?", step) == ("Sure!\n", True)
    assert say("Yes! **Grandma Rose**: and cookies too", step) == ("Yes! ", True)


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_ordinary_colons_are_not_script_turns(step):
    """Times, ratios, labels like 'Note:' and a list after 'ideas:' pass untouched."""
    for text in (
        "Meet me at 10:30 tomorrow. Note: bring snacks.",
        "The ratio is 3:2 and that's fine.",
        "Here are three ideas:\nApples: red and sweet.\nPears: green.",
        "Plan for the week.\nMonday: gym. Tuesday: rest.",
        "I told Robin the plan. It is simple.",
    ):
        assert say(text, step) == (text, False)


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_her_own_name_as_a_vocative_is_dropped(step):
    """'Mika, I think...' is said as 'I think...'; 'Mika:' as before."""
    assert say("Mika, I think that's lovely.", step)[0] == "I think that's lovely."
    assert say("Mika, that's lovely.", step)[0] == "That's lovely."
    assert say("Robin, that's lovely.", step)[0] == "Robin, that's lovely."


@pytest.mark.parametrize("step", [1, 5, 1000])
def test_calling_herself_by_another_name_ends_that_sentence(step):
    """'I'm Robin' said to Robin is never heard; 'I'm Mika', 'I'm happy' and 'I'm English' are."""
    assert say("Hi Robin! I'm Robin, nice to meet you. What do you like?", step) == ("Hi Robin! What do you like?", False)
    assert say("Hello there, my name is Sarah and I like tea. How are you?", step) == ("Hello there. How are you?", False)
    for fine in ("I'm Mika and I love music.", "I'm happy you came!", "I'm English, actually.", "I am Robin's friend."):
        assert say(fine, step) == (fine, False)


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_a_sentence_from_her_last_replies_is_not_said_again(step):
    """The opening she used last time is left out; the rest of the reply is said."""
    before = ("Hello! I'm so happy to see you again today, friend.",)
    assert say("I'm so happy to see you again today! Let's talk about music.", step, before) == ("Let's talk about music.", False)
    # a reply that is nothing but the copy is still said: better a copy than silence
    assert say("I'm so happy to see you again today.", step, before) == ("I'm so happy to see you again today.", False)


@pytest.mark.parametrize("step", [1, 6, 1000])
def test_a_sentence_said_again_in_the_same_reply_ends_it(step):
    """Not back to back: a loop over a few sentences stops at the first sentence that comes again."""
    text = "I really love the rain in spring. It smells nice. I really love the rain in spring. It smells nice."
    assert say(text, step) == ("I really love the rain in spring. It smells nice. ", True)
    short = "Oh, I see. That is nice. Oh, I see."  # short sentences may come twice
    assert say(short, step) == (short, False)


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_a_phrase_said_before_is_not_said_again_mid_sentence(step):
    """Six words in a row from an earlier sentence end that sentence there, even when it began differently."""
    said, _ = clean(
        "I'm so glad you're thinking of getting a cat. Honestly, I'm really glad you're thinking of getting a cat today! Cats are great.",
        step,
    )
    assert said == "I'm so glad you're thinking of getting a cat. Cats are great."
    said, _ = clean("I'm so glad you're thinking of getting a cat. Tell me, my dear friend, I'm glad you're thinking of getting a cat.", step)
    assert said.rstrip() == "I'm so glad you're thinking of getting a cat. Tell me, my dear friend."
    earlier = ("I'm really excited that you're thinking of getting a cat.",)
    said, _ = clean("Wow. Well, you know that you're thinking of getting a cat, right? Pick a calm one.", step, recent=earlier)
    assert said == "Wow. Pick a calm one."


@pytest.mark.parametrize("step", [1, 1000])
def test_an_echo_of_the_persons_message_is_left_out(step):
    """Her reply does not repeat the person's own question back to them."""
    said, _ = clean("Can you tell me a short joke? Why did the cat sit on the laptop? To keep an eye on the mouse!", step,
                    message="Can you tell me a short joke?")
    assert said == "Why did the cat sit on the laptop? To keep an eye on the mouse!"


def test_common_short_phrases_are_not_copies():
    """Short everyday phrases may come again: only six words in a row count."""
    said, _ = clean("I love that idea. Tell me more, I love that!", recent=("I love that song so much.",))
    assert said == "I love that idea. Tell me more, I love that!"


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_she_does_not_greet_herself_by_name(step):
    """'Hey Aiko!' written by Aiko becomes 'Hey!'; a greeting to the person keeps their name."""
    assert clean("Hey Aiko! How was your day?", step)[0] == "Hey! How was your day?"
    assert clean("Hi, Aiko, good to see you.", step)[0] == "Hi, good to see you."
    assert clean("Hey Sam! How was your day?", step)[0] == "Hey Sam! How was your day?"
    assert clean("Hey Aikonia is a city.", step)[0] == "Hey Aikonia is a city."


def test_a_reply_of_copies_ending_in_a_fragment_says_one_copy_not_the_fragment():
    """When everything was a copy and the budget cut the last sentence, she says the first copy, not "I'm so"."""
    earlier = ("I'm so glad you're thinking of getting a cat.",)
    said, _ = clean("I'm so glad you're thinking of getting a cat. I'm so", recent=earlier)
    assert said.strip() == "I'm so glad you're thinking of getting a cat."


def test_a_clause_that_never_ends_still_streams():
    """Text without commas or full stops is passed on as it comes (a few words behind), not held to the end."""
    hygiene = ReplyHygiene(["Sam"], "Aiko", recent_replies=["I really love the sound of the rain on the roof."])
    passed = hygiene.feed(" ".join(f"word{i}" for i in range(40)) + " ")
    assert passed.startswith("word0 ") and len(passed.split()) >= 40 - 16
