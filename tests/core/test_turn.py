import asyncio

from companion.core.turn import Turn
from companion.llm.base import LLMHTTPError
from companion.runtime.bus import EventBus
from companion.runtime.events import EmotionCue, SentenceReady, TokenStreamed, TurnEnded
from companion.testing import ScriptedLLM, VirtualClock

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_turn_streams_sentences_and_records_timings():
    """A turn yields sentences in order, strips tags into emotions and times each stage."""
    llm = ScriptedLLM(["[happy] Hi there! How are you today? Tell me everything."])
    sentences = []
    result = await Turn(llm, MESSAGES, on_sentence=sentences.append).run()
    assert [s.text for s in sentences] == ["Hi there!", "How are you today?", "Tell me everything."]
    assert result.reply == "Hi there! How are you today? Tell me everything."
    assert result.emotions == ["happy"]
    t = result.timings_ms
    assert 0 <= t["first_token"] <= t["first_sentence"] <= t["end"]
    assert t["overhead"] >= 0 and t["provider"] >= 0


async def test_interrupt_stops_the_reply_and_keeps_what_was_said():
    """interrupt() ends the turn promptly, marked interrupted, with the partial reply."""
    clock = VirtualClock()
    llm = ScriptedLLM(["One two three four five six seven eight nine ten. " * 5], token_delay=0.02, sleep=clock.sleep)
    tokens = []
    turn = Turn(llm, MESSAGES, on_token=tokens.append)
    task = asyncio.create_task(turn.run())
    while len(tokens) < 3:
        await clock.advance(0.02)
    turn.interrupt()
    result = await asyncio.wait_for(task, 1)
    assert result.interrupted
    assert result.reply.startswith("One two three")
    assert len(result.reply.split()) < 20


async def test_events_are_published_on_the_bus():
    """Tokens, sentences, emotion cues and the end of the turn reach bus subscribers."""
    bus = EventBus()
    seen = []
    for cls in (TokenStreamed, SentenceReady, EmotionCue, TurnEnded):
        bus.subscribe(cls, seen.append)
    await Turn(ScriptedLLM(["<sad> Oh no. That is bad."]), MESSAGES, bus=bus).run()
    kinds = [type(e).__name__ for e in seen]
    assert kinds.count("SentenceReady") == 2
    assert EmotionCue(seen[0].turn_id, "sad") in seen
    assert kinds[-1] == "TurnEnded"


async def test_llm_error_becomes_a_result_error_not_an_exception():
    """A failing provider ends the turn with an error message the adapter can show."""
    llm = ScriptedLLM(fail_with=LLMHTTPError(401, "openai: refused the API key"))
    result = await Turn(llm, MESSAGES).run()
    assert result.error == "openai: refused the API key"
    assert result.reply == "" and not result.interrupted


async def test_outside_cancellation_propagates():
    """Cancellation that is not an interrupt (shutdown) still cancels the caller."""
    clock = VirtualClock()
    turn = Turn(ScriptedLLM(["a b c d e f g"], token_delay=0.05, sleep=clock.sleep), MESSAGES)
    task = asyncio.create_task(turn.run())
    await clock.advance(0.06)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the turn swallowed a shutdown cancellation")
    assert turn.result is not None and turn.result.interrupted


async def test_a_reply_that_hits_its_budget_ends_at_its_last_complete_sentence():
    """When the provider stops for length, the cut-off sentence is neither spoken nor stored."""
    from companion.llm.base import LLMChunk

    class Capped(ScriptedLLM):
        async def _stream(self, messages, options):
            for piece in ["Hello there, friend! ", "I like tea. ", "And one more thi"]:
                yield LLMChunk(text=piece)
            yield LLMChunk(finish_reason="length")

    spoken = []
    turn = Turn(Capped(), [{"role": "user", "content": "hi"}], on_sentence=lambda s: spoken.append(s.speech))
    result = await turn.run()
    assert result.reply == "Hello there, friend! I like tea."
    assert spoken and all("thi" not in s.split() for s in spoken) and "one more" not in " ".join(spoken)


async def test_stage_directions_are_written_as_actions_and_never_spoken():
    """'(laughs)' and '(sarcasm)' are kept in the written reply as *actions*; the voice gets only the words."""
    result = await Turn(ScriptedLLM(["(laughs) That is a funny game. (sarcasm)"]), MESSAGES).run()
    assert result.reply == "*laughs* That is a funny game. *sarcasm*"
    assert [s.speech for s in result.sentences if s.speech] == ["That is a funny game."]
    assert "happy" in result.emotions


async def test_an_opening_is_said_first_and_the_model_continues_it():
    """A reply with an opening (their own remembered words) speaks it first; the model's text follows in the same reply."""
    llm = ScriptedLLM([" They sound lovely."])
    sentences = []
    result = await Turn(llm, MESSAGES, on_sentence=sentences.append, opening="You told me you have two cats.").run()
    assert [s.text for s in sentences] == ["You told me you have two cats.", "They sound lovely."]
    assert result.reply == "You told me you have two cats. They sound lovely."
    assert result.written == "You told me you have two cats. They sound lovely."
