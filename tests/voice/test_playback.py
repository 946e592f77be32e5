"""The playback buffer knows which words were heard."""

import numpy as np

from companion.voice.playback import PlaybackBuffer, spoken_prefix


def test_spoken_prefix_counts_words_heard():
    """Half of a sentence's audio is about half of its words."""
    assert spoken_prefix("one two three four", 1.0) == "one two three four"
    assert spoken_prefix("one two three four", 0.0) == ""
    assert spoken_prefix("one two three four", 0.5) == "one two"


def test_clear_returns_what_was_heard_and_drops_the_rest():
    """After a barge-in, whole sentences played and the heard part of the current one remain."""
    buf = PlaybackBuffer(1000)
    buf.push(0, "First sentence here.", np.ones(1000, np.float32), 1000, final=True)
    buf.push(1, "Second one is long and never finished.", np.ones(1000, np.float32), 1000, final=True)
    buf.push(2, "Third is never heard.", np.ones(1000, np.float32), 1000, final=True)
    assert len(buf.read(1000)) == 1000
    buf.read(500)
    heard = buf.clear()
    assert heard.startswith("First sentence here. Second one is")
    assert "never finished" not in heard and "Third" not in heard
    assert not buf.busy
    assert not buf.read(100).any()  # cleared: silence


def test_resampled_on_push():
    """Audio pushed at another rate is converted to the output's rate."""
    buf = PlaybackBuffer(48_000)
    buf.push(0, "hi", np.zeros(24_000, np.float32), 24_000, final=True)
    assert abs(buf.queued_seconds() - 1.0) < 0.01
