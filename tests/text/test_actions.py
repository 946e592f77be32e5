"""Stage directions: shown as actions, never spoken, and their feelings move the avatar."""

import pytest

from companion.text.actions import split_actions
from companion.text.chunking import ReplyChunker


@pytest.mark.parametrize(
    ("text", "shown", "spoken", "feelings"),
    [
        ("*smiles* Hi there!", "*smiles* Hi there!", "Hi there!", ["happy"]),
        ("(laughing) That is funny.", "*laughing* That is funny.", "That is funny.", ["happy"]),
        ("Oh no. *sighs*", "Oh no. *sighs*", "Oh no.", ["sad"]),
        ("(in a soft voice) Good night.", "*in a soft voice* Good night.", "Good night.", []),
        ("(with a warm smile) Sure.", "*with a warm smile* Sure.", "Sure.", ["happy"]),
        ("*happily waves* Bye!", "*happily waves* Bye!", "Bye!", []),
        ("*blushes* Thank you.", "*blushes* Thank you.", "Thank you.", ["embarrassed"]),
    ],
)
def test_stage_directions_are_shown_not_spoken(text, shown, spoken, feelings):
    """Each direction is italic in the written reply, absent from speech, and its feeling is cued."""
    assert split_actions(text) == (shown, spoken, feelings)


@pytest.mark.parametrize(
    "text", ["That is *really* good.", "It takes (about twenty minutes) to get there.", "The (red) car.", "I *love* it."]
)
def test_emphasis_and_ordinary_asides_are_left_alone(text):
    """Emphasis and asides are said as written."""
    assert split_actions(text) == (text, text, [])


def test_the_chunker_speaks_without_directions_and_cues_their_feeling():
    """A streamed reply with '*giggles*' and '(smiling)': the voice never says them, the avatar smiles."""
    chunker = ReplyChunker()
    sentences = []
    for piece in ["*gig", "gles* Oh, you are", " funny! (smiling) Tell me", " more."]:
        sentences += chunker.feed(piece)
    sentences += chunker.finish()
    speech = " ".join(s.speech for s in sentences)
    assert "giggle" not in speech and "smiling" not in speech and "funny" in speech and "Tell me more" in speech
    assert "happy" in {e for s in sentences for e in s.emotions}
    assert "*giggles*" in sentences[0].text


def test_a_direction_that_names_the_character_is_still_a_direction():
    """'*Aiko grins*' (any name first) is an action; '*Paris* is lovely' is not."""
    assert split_actions("*Aiko grins* Sure!") == ("*Aiko grins* Sure!", "Sure!", ["happy"])
    assert split_actions("*Paris* is lovely.") == ("*Paris* is lovely.", "*Paris* is lovely.", [])
