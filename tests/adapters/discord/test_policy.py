"""Who the Discord adapter answers, how replies are split, and the rate limiter: pure logic."""

from companion.adapters.discord.policy import MessageFacts, RateLimiter, answer_reason, split_reply


def facts(**kw) -> MessageFacts:
    base = dict(author_id=5, author_is_bot=False, is_self=False, is_dm=False, mentions_bot=False, replies_to_bot=False, channel_id=10, text="hi")
    return MessageFacts(**{**base, **kw})


def reason(f: MessageFacts, channels=(), blocked=(), allow_bots=False, answer_dms=True):
    return answer_reason(f, channels=set(channels), answer_dms=answer_dms, allow_bots=allow_bots, blocked=set(blocked))


def test_who_is_answered():
    """Mentions, replies to the bot, DMs and designated channels are answered; other chatter is not."""
    assert reason(facts(mentions_bot=True)) == "mention"
    assert reason(facts(replies_to_bot=True)) == "reply"
    assert reason(facts(is_dm=True)) == "dm"
    assert reason(facts(channel_id=77), channels=[77]) == "channel"
    assert reason(facts()) is None
    assert reason(facts(is_dm=True), answer_dms=False) is None


def test_bots_self_and_blocked_users_are_ignored():
    """Other bots (unless allowed), the bot itself and blocked users never get an answer."""
    assert reason(facts(mentions_bot=True, author_is_bot=True)) is None
    assert reason(facts(mentions_bot=True, author_is_bot=True), allow_bots=True) == "mention"
    assert reason(facts(mentions_bot=True, is_self=True)) is None
    assert reason(facts(mentions_bot=True), blocked=[5]) is None


def test_split_at_sentence_boundaries_under_2000():
    """A long reply becomes pieces of at most 2000 characters that end at sentence ends."""
    text = " ".join(f"This is sentence number {i} of a rather long reply." for i in range(120))
    pieces = split_reply(text)
    assert len(pieces) > 2 and all(len(p) <= 2000 for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text


def test_split_a_single_giant_sentence_at_spaces():
    """One sentence over the limit is cut at word boundaries, losing nothing."""
    text = "word " * 900
    pieces = split_reply(text)
    assert all(len(p) <= 2000 for p in pieces) and " ".join(pieces).split() == text.split()


def test_rate_limiter_window():
    """N per minute per key, refilled as the minute passes."""
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.allow("u") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("other")
    now[0] = 60.1
    assert limiter.allow("u")


def test_rate_limiter_forgets_people_who_went_quiet():
    """A server where thousands of people each speak once does not keep a window for every one of them."""
    from companion.adapters.discord.policy import PRUNE_KEYS_OVER

    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for person in range(5 * PRUNE_KEYS_OVER):
        now[0] += 0.5  # one message every half second, each from someone new
        assert limiter.allow(person)
        assert len(limiter._events) <= PRUNE_KEYS_OVER + 1
    assert [limiter.allow(5 * PRUNE_KEYS_OVER - 1) for _ in range(3)] == [True, True, False]  # the active still limited
