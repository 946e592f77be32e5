"""Which chat message the companion answers next: pure logic, bounded memory, any input rate.

- Bounded: at most ``capacity`` candidates; when full, the weakest is dropped.
  Duplicate and per-user counters live in fixed-size windows.
- Spam: the same text again (by its normalised form) is a duplicate; the same
  text from many people is copypasta (it feeds the burst summary, never the
  queue); a user sending faster than ``user_burst`` per 10 s is flooding.
- Ranking: mentions of the companion, questions, paid events, regulars known
  to memory, fairness (people answered less often first) and freshness, with
  configurable weights; candidates older than ``max_age`` expire.
- Bursts: when chat runs faster than ``burst_rate`` messages per 10 s, the
  companion is offered a summary ("chat is asking about X") instead of one
  message picked from the flood.
- Speaking time: while the companion speaks, ``next()`` returns nothing;
  candidates wait, and expire if the wait outlasts ``max_age``.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from companion.stream.message import ChatMessage

__all__ = ["Weights", "Candidate", "ChatPrioritiser"]

_STOP = set("""a an the i you he she it we they me my your is are was were be been am do does did to of in on at for with and or
but so if not no yes this that what who how why when where can could would should will just lol lmao like im its
dont get got have has had please pls u ur guys chat mika""".split())
_WORD = re.compile(r"[a-z0-9']{3,}")
FLOOD_WINDOW_S = 10.0  # more than user_burst messages from one person within this is flooding
REPEAT_WINDOW_S = 60.0  # the same text again within this is a duplicate (one person) or copypasta (many)
MAX_TRACKED = 5000  # people and texts remembered for those checks, even in a flood of new ones


def _dedupe_key(text: str) -> str:
    """Same message for spam purposes: case, spacing, punctuation and stretched letters ignored."""
    return re.sub(r"(.)\1+", r"\1", re.sub(r"[^\w]+", "", text.lower()))[:200]


@dataclass(frozen=True, slots=True)
class Weights:
    mention: float = 3.0
    question: float = 1.5
    paid: float = 2.0  # times log1p(amount)
    event: float = 2.5  # subs, gifts, raids, redemptions, super chats
    regular: float = 1.0
    fairness: float = 1.5  # scaled by 1 / (1 + times this person was answered recently)
    freshness: float = 2.0  # lost linearly over max_age


@dataclass(frozen=True, slots=True)
class Candidate:
    """What to answer: one message, or a summary of a burst (``message`` None)."""

    text: str
    message: ChatMessage | None = None
    count: int = 1
    score: float = 0.0

    @property
    def is_summary(self) -> bool:
        return self.message is None


@dataclass
class _Stats:
    received: int = 0
    queued: int = 0
    duplicates: int = 0
    copypasta: int = 0
    flooding: int = 0
    evicted: int = 0
    expired: int = 0
    summaries: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class ChatPrioritiser:
    def __init__(
        self,
        *,
        weights: Weights | None = None,
        capacity: int = 200,
        max_age: float = 45.0,
        user_burst: int = 5,
        copypasta_users: int = 3,
        burst_rate: int = 60,
        regulars: set[str] | None = None,
        clock=time.monotonic,
    ) -> None:
        self.weights = weights or Weights()
        self.capacity = capacity
        self.max_age = max_age
        self.user_burst = user_burst
        self.copypasta_users = copypasta_users
        self.burst_rate = burst_rate
        self.regulars = regulars if regulars is not None else set()
        self.clock = clock
        self._queue: dict[int, ChatMessage] = {}
        self._keys: dict[int, str] = {}  # queued message id -> normalised text
        self._seen: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()  # normalised text -> (last time, users)
        self._user_times: OrderedDict[str, deque[float]] = OrderedDict()
        self._answered: OrderedDict[str, int] = OrderedDict()
        self._recent: deque[tuple[float, tuple[str, ...]]] = deque(maxlen=600)  # (time, words) for burst topics
        self._speaking_until = 0.0
        self.stats = _Stats()

    # -- input ---------------------------------------------------------------------

    def add(self, message: ChatMessage) -> str:
        """Take one message; returns "queued", "duplicate", "copypasta", "flooding" or "evicted"."""
        now = self.clock()
        self.stats.received += 1
        key = _dedupe_key(message.text)
        words = tuple(w for w in _WORD.findall(message.text.lower()) if w not in _STOP)
        self._recent.append((now, words))
        verdict = self._spam(message, key, now)
        if verdict:
            self.stats.reasons[verdict] += 1
            return verdict
        self._queue[message.id] = message
        self._keys[message.id] = key
        self.stats.queued += 1
        if len(self._queue) > self.capacity:
            worst = min(self._queue.values(), key=lambda m: self._score(m, now))
            self._drop(worst.id)
            self.stats.evicted += 1
            if worst.id == message.id:
                return "evicted"
        return "queued"

    def _spam(self, message: ChatMessage, key: str, now: float) -> str | None:
        if message.kind != "chat":
            return None  # events are never spam
        times = self._user_times.pop(message.user_id, deque(maxlen=self.user_burst + 1))
        times.append(now)
        self._user_times[message.user_id] = times
        # most recently heard last: forget people quiet for longer than the flood window (a day of
        # thousands of viewers keeps only the ones talking now), and never more than MAX_TRACKED
        while len(self._user_times) > MAX_TRACKED or now - next(iter(self._user_times.values()))[-1] > FLOOD_WINDOW_S:
            self._user_times.popitem(last=False)
        if len(times) > self.user_burst and now - times[0] < FLOOD_WINDOW_S:
            self.stats.flooding += 1
            return "flooding"
        if not key:
            return None
        last, users = self._seen.pop(key, (0.0, set()))
        fresh = now - last < REPEAT_WINDOW_S
        users = users if fresh else set()
        repeat = fresh and message.user_id in users
        users.add(message.user_id)
        if len(users) > 50:
            users = set(list(users)[:50])
        self._seen[key] = (now, users)
        while len(self._seen) > MAX_TRACKED or now - next(iter(self._seen.values()))[0] >= REPEAT_WINDOW_S:
            self._seen.popitem(last=False)
        if repeat:
            self.stats.duplicates += 1
            return "duplicate"
        if len(users) >= self.copypasta_users:
            self.stats.copypasta += 1
            # drop queued copies of it too: a wall of the same text is one thing, not many
            for mid in [mid for mid, k in self._keys.items() if k == key]:
                self._drop(mid)
            return "copypasta"
        return None

    # -- output --------------------------------------------------------------------

    def speaking(self, seconds: float) -> None:
        """The companion will be speaking for about ``seconds``: candidates wait."""
        self._speaking_until = max(self._speaking_until, self.clock() + seconds)

    def done_speaking(self) -> None:
        self._speaking_until = 0.0

    def next(self) -> Candidate | None:
        """The best thing to answer now, or None (nothing worth it, or the companion is speaking)."""
        now = self.clock()
        if now < self._speaking_until:
            return None
        self._expire(now)
        rate = sum(1 for t, _ in self._recent if now - t <= 10.0)
        if rate >= self.burst_rate:
            summary = self._summary(now, rate)
            if summary is not None:
                return summary
        if not self._queue:
            return None
        best = max(self._queue.values(), key=lambda m: self._score(m, now))
        self._drop(best.id)
        self._answered[best.user_id] = self._answered.pop(best.user_id, 0) + 1
        while len(self._answered) > 2000:
            self._answered.popitem(last=False)
        return Candidate(best.text, best, 1, self._score(best, now))

    def _expire(self, now: float) -> None:
        old = [mid for mid, m in self._queue.items() if now - m.at > self.max_age and m.kind == "chat"]
        for mid in old:
            self._drop(mid)
        self.stats.expired += len(old)

    def _summary(self, now: float, rate: int) -> Candidate | None:
        counts: Counter[str] = Counter()
        for t, words in self._recent:
            if now - t <= 10.0:
                counts.update(set(words))
        if not counts:
            return None
        topic, hits = counts.most_common(1)[0]
        if hits < max(5, min(rate, len(self._recent)) // 10):  # one topic in a tenth of the flood
            return None
        # the burst is answered as a whole: clear the queued chat messages that are part of it
        example = next((m.text for m in self._queue.values() if topic in m.text.lower()), topic)
        for mid in [mid for mid, m in self._queue.items() if m.kind == "chat" and topic in m.text.lower()]:
            self._drop(mid)
        self._recent.clear()
        self.stats.summaries += 1
        return Candidate(f'Chat is busy ({rate} messages in 10 s) and many are about "{topic}", e.g. "{example[:120]}"', None, hits)

    def _drop(self, mid: int) -> None:
        self._queue.pop(mid, None)
        self._keys.pop(mid, None)

    def _score(self, m: ChatMessage, now: float) -> float:
        w = self.weights
        score = 0.0
        if m.mentions_bot:
            score += w.mention
        if "?" in m.text:
            score += w.question
        if m.amount > 0:
            score += w.paid * math.log1p(m.amount)
        if m.kind != "chat":
            score += w.event
        if m.user_id in self.regulars:
            score += w.regular
        score += w.fairness / (1 + self._answered.get(m.user_id, 0))
        score += w.freshness * max(0.0, 1 - (now - m.at) / self.max_age)
        return score

    def __len__(self) -> int:
        return len(self._queue)
