"""Moderation: blocklist through normalisation, input rules, per-sentence output replacement."""

import pytest

from companion.core.moderation import Moderator, normalise
from companion.stream.message import ChatMessage


@pytest.mark.parametrize("evasion", ["BADWORD", "b a d w o r d", "b.a.d.w.o.r.d", "bаdwоrd", "b4dw0rd", "baaadwooord", "Ｂａｄｗｏｒｄ", "bädwörd"])
def test_evasions_are_caught(evasion):
    """Case, spacing, punctuation, Cyrillic look-alikes, leetspeak, repeats, full-width and accents all fold."""
    assert Moderator(["badword"]).blocked(f"you are a {evasion} lol")


@pytest.mark.parametrize("innocent", ["check the class schedule", "assistant", "I passed the exam", "Scunthorpe United"])
def test_innocent_words_containing_short_terms_pass(innocent):
    """Short terms match whole words only (no Scunthorpe problem)."""
    assert not Moderator(["ass", "cunt"]).blocked(innocent)


def test_input_rules():
    """Blocked users and terms are refused; links are stripped; a link-only message is dropped."""
    mod = Moderator(["badword"], blocked_users=["troll42"])
    m = lambda user, text: ChatMessage("twitch", user, user, text)  # noqa: E731
    assert mod.check_input(m("troll42", "hi")).reason == "blocked user"
    assert mod.check_input(m("a", "b4dw0rd")).reason == "blocked term"
    ok = mod.check_input(m("a", "look at https://scam.example/free and bit.ly/x nice"))
    assert ok.allowed and "http" not in ok.text and "bit.ly" not in ok.text
    assert not mod.check_input(m("a", "www.spam.com")).allowed


def test_output_sentence_replaced_and_classifier_hook():
    """A blocked sentence becomes the safe line; the optional classifier can block too."""
    mod = Moderator(["badword"], replacement="Moving on!", classifier=lambda t: "forbidden topic" in t)
    assert mod.check_output("That is a b-a-d-w-o-r-d.") == "Moving on!"
    assert mod.check_output("Let's discuss the forbidden topic.") == "Moving on!"
    assert mod.check_output("Hello chat!") == "Hello chat!"
    assert normalise("H3LL0  W0RLD") == "heloworld"
