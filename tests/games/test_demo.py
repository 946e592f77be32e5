import random

from companion.adapters.neuro_api import NeuroGameServer
from companion.config import GamesSection
from companion.games.decider import ActionDecider
from companion.games.demo import Board, play
from companion.testing import ScriptedLLM


def test_board_detects_wins_and_draws():
    """Three in a row wins; a full board without one is a draw."""
    board = Board(list("XXXOO    "))
    assert board.winner() == "X"
    assert Board(list("XOXXOOOXX")).winner() == "draw"
    assert Board().free() == list(range(1, 10))


async def test_demo_game_plays_to_the_end_with_only_legal_moves():
    """The demo client plays whole games against the server; every companion move is legal."""
    comments = []

    async def commentator(conversation, text):
        comments.append(text)

    server = NeuroGameServer(
        ActionDecider(ScriptedLLM(["hmm, let me think"]), attempts=1, rng=random.Random(3)),
        GamesSection(port=0, chattiness=1.0),
        commentator=commentator,
        rng=random.Random(0),
    )
    await server.start()
    try:
        stats = await play(f"ws://127.0.0.1:{server.port}/", rounds=3, rng=random.Random(1), show=lambda _: None)
    finally:
        await server.stop()
    assert stats.rounds == 3 and stats.rejected == 0
    assert all(r in ("X", "O", "draw") for r in stats.results)
    assert comments, "non-silent game events should reach the commentator"
