"""The chat prioritiser on scripted chat logs: raids, copypasta, paid messages, fairness, speaking time."""

import random

from companion.stream.message import ChatMessage
from companion.stream.prioritiser import FLOOD_WINDOW_S, REPEAT_WINDOW_S, ChatPrioritiser


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def msg(clock, user, text, **kw) -> ChatMessage:
    return ChatMessage("twitch", user, user, text, at=clock.now, **kw)


def test_mentions_questions_and_paid_messages_come_first():
    """A question to the companion and a cheer beat small talk."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock)
    p.add(msg(clock, "a", "lol"))
    p.add(msg(clock, "b", "nice weather"))
    p.add(msg(clock, "c", "@mika what game is this?", mentions_bot=True))
    p.add(msg(clock, "d", "take my bits", kind="cheer", amount=500))
    first, second = p.next(), p.next()
    assert {first.message.user_id, second.message.user_id} == {"c", "d"}


def test_duplicates_flooding_and_copypasta_are_not_queued():
    """The same text twice, one user spamming, and the same text from many users never reach the queue one by one."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, copypasta_users=3, user_burst=5)
    assert p.add(msg(clock, "a", "hello mika")) == "queued"
    assert p.add(msg(clock, "a", "HELLO   mika!!")) == "duplicate"
    verdicts = [p.add(msg(clock, "spammer", f"spam {i}")) for i in range(8)]
    assert verdicts.count("flooding") >= 2
    pasta = "This is a copypasta that everyone posts in chat at the same time"
    outs = [p.add(msg(clock, f"u{i}", pasta)) for i in range(10)]
    assert outs[:2] == ["queued", "queued"] and set(outs[2:]) == {"copypasta"}
    queued_texts = [c.message.text for c in iter(p.next, None) if c.message]
    assert pasta not in queued_texts


def test_raid_memory_is_bounded_and_becomes_a_summary():
    """Thousands of messages in seconds: the queue stays at capacity and the companion gets a summary of the burst."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, capacity=200, burst_rate=60)
    rng = random.Random(1)
    for i in range(5000):
        clock.now += 0.002
        topic = "boss fight" if rng.random() < 0.6 else rng.choice(["hi", "lol", "pog", "gg"])
        p.add(msg(clock, f"viewer{i % 3000}", f"{topic} {rng.randint(0, 10**6)}"))
        assert len(p) <= 200
    first = p.next()
    assert first.is_summary and "boss" in first.text or "fight" in first.text


def test_a_day_of_viewers_leaves_only_the_recent_ones_tracked():
    """Thousands of viewers who each say one thing: the spam checks remember only the last minute of chat."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, capacity=50)
    for i in range(20_000):  # one message every 0.5 s for almost three hours, each from someone new
        clock.now += 0.5
        p.add(msg(clock, f"viewer{i}", f"hello number {i}"))
        if i % 10 == 0:
            p.next()
    assert len(p._user_times) <= FLOOD_WINDOW_S / 0.5 + 1
    assert len(p._seen) <= REPEAT_WINDOW_S / 0.5 + 1
    # and the checks still work on what is recent
    p.add(msg(clock, "viewer1", "same again"))
    assert p.add(msg(clock, "viewer1", "same again")) == "duplicate"


def test_fairness_spreads_answers_across_people():
    """One chatty person does not get every answer: someone not yet answered goes first."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, user_burst=100)
    p.add(msg(clock, "chatty", "question one?"))
    assert p.next().message.user_id == "chatty"
    p.add(msg(clock, "chatty", "question two?"))
    p.add(msg(clock, "quiet", "my first question?"))
    assert p.next().message.user_id == "quiet"


def test_while_speaking_candidates_wait_then_expire():
    """Nothing is offered while the companion speaks; what waited too long expires, events do not."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, max_age=30)
    p.add(msg(clock, "a", "are you there?"))
    p.add(msg(clock, "b", "", kind="raid", amount=120))
    p.speaking(60)
    assert p.next() is None
    clock.now += 61
    c = p.next()
    assert c.message.kind == "raid" and p.next() is None and p.stats.expired == 1


def test_regulars_known_to_memory_rank_higher():
    """A regular's ordinary message beats a stranger's ordinary message."""
    clock = Clock()
    p = ChatPrioritiser(clock=clock, regulars={"old_friend"})
    p.add(msg(clock, "stranger", "good evening"))
    p.add(msg(clock, "old_friend", "good evening everyone"))
    assert p.next().message.user_id == "old_friend"
