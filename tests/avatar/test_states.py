from companion.avatar.states import AvatarStates


def test_a_spoken_turn_goes_listening_thinking_speaking_idle():
    """Speech -> listening, reply -> thinking until audio -> speaking, silence after the reply -> idle."""
    s = AvatarStates()
    assert s.speech_started() == "listening"
    assert s.turn_started() == "thinking"
    assert s.level(0.0, 1.0) == "thinking"  # no audio yet
    assert s.level(0.2, 1.1) == "speaking"
    assert s.level(0.0, 1.2) == "speaking"  # a pause between sentences
    assert s.turn_ended(1.3) == "speaking"  # the reply is written, its audio still plays
    assert s.level(0.0, 1.35) == "speaking"
    assert s.level(0.0, 1.5) == "idle"


def test_text_replies_and_barge_in():
    """A reply without audio ends idle; a person talking over her does not hide that she speaks until the audio stops."""
    s = AvatarStates()
    s.turn_started()
    assert s.turn_ended(5.0) == "idle"
    s.turn_started()
    s.level(0.3, 6.0)
    assert s.speech_started() == "speaking"
    assert s.level(0.0, 6.5) == "thinking"  # audio cleared, the reply still running
