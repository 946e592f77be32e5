import asyncio
import random
from pathlib import Path

import platformdirs
import pytest

from companion.games.decider import ActionDecider, parse_choice
from companion.games.protocol import Action
from companion.games.schema import validation_error
from companion.llm.openai import OpenAILLM
from companion.testing import ScriptedLLM

PLACE = Action("place", "Place your mark on a free cell", {
    "type": "object", "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["cell"]
})
PASS = Action("pass", "Skip your turn")


def test_parse_choice_finds_json_in_chatty_text():
    """JSON wrapped in prose or code fences is still read."""
    name, data, problem = parse_choice('Sure! ```json\n{"action": "place", "data": {"cell": 5}}\n``` done')
    assert (name, data, problem) == ("place", {"cell": 5}, None)
    assert parse_choice("I pick the middle")[2] is not None


async def test_valid_first_answer_is_used():
    """A schema-valid answer is taken on the first try."""
    llm = ScriptedLLM(['{"action": "place", "data": {"cell": 5}}'])
    decision = await ActionDecider(llm).decide("Tic-tac-toe", [PLACE, PASS], query="Your move")
    assert (decision.name, decision.data, decision.first_try_valid, decision.fallback) == ("place", {"cell": 5}, True, False)
    prompt = llm.prompts[0][1]["content"]
    assert "Your move" in prompt and "place" in prompt and "<integer, one of: " in prompt


async def test_invalid_answer_is_retried_with_the_error():
    """An out-of-schema answer is sent back with the validation error, and the corrected one is used."""
    llm = ScriptedLLM(['{"action": "place", "data": {"cell": 42}}', '{"action": "place", "data": {"cell": 3}}'])
    decision = await ActionDecider(llm).decide("T", [PLACE], query="go")
    assert decision.data == {"cell": 3} and decision.attempts == 2 and not decision.first_try_valid
    assert "cell" in llm.prompts[1][-1]["content"] and "not valid" in llm.prompts[1][-1]["content"]


async def test_model_that_never_complies_gets_a_valid_fallback():
    """After the last failed try, a generated schema-valid choice among the allowed actions is used."""
    llm = ScriptedLLM(["I like turtles"])
    decision = await ActionDecider(llm, attempts=2, rng=random.Random(1)).decide("T", [PLACE], query="go")
    assert decision.fallback and decision.name == "place"
    assert validation_error(decision.data, PLACE.schema) is None
    assert len(llm.prompts) == 2


async def test_slow_model_times_out_into_the_fallback():
    """A model slower than the decision timeout does not hold the game up."""
    llm = ScriptedLLM(["{" + " " * 50 + "}"], token_delay=0.2)
    start = asyncio.get_running_loop().time()
    decision = await ActionDecider(llm, timeout=0.3).decide("T", [PASS], query="go")
    assert decision.fallback and decision.name == "pass" and decision.data is None
    assert asyncio.get_running_loop().time() - start < 1.5


async def test_openai_servers_get_a_json_schema_constraint(fake_openai):
    """With an OpenAI-compatible server, the allowed actions go out as a response_format JSON schema."""
    fake_openai.reply = '{"action": "place", "data": {"cell": 7}}'
    llm = OpenAILLM(base_url=fake_openai.base_url, model="test-model")
    decision = await ActionDecider(llm).decide("T", [PLACE, PASS], query="go")
    await llm.close()
    assert decision.data == {"cell": 7}
    fmt = fake_openai.requests[0]["response_format"]
    assert fmt["type"] == "json_schema"
    names = [o["properties"]["action"]["enum"][0] for o in fmt["json_schema"]["schema"]["anyOf"]]
    assert names == ["place", "pass"]


async def test_prompt_gives_the_format_without_example_values():
    """The model sees each action's data shape with placeholders; no concrete cell it could copy."""
    llm = ScriptedLLM(['{"action": "pass"}'])
    await ActionDecider(llm).decide("T", [PLACE, PASS], query="go")
    prompt = llm.prompts[0][-1]["content"]
    assert '"cell": <integer, one of: ' in prompt
    assert not any(f'"cell": {n}' in prompt for n in range(10))


@pytest.mark.slow
async def test_embedded_llamacpp_model_moves_vary_and_are_valid_first_try():
    """With the packaged GGUF in llama.cpp and a JSON schema, every decision is valid at once and cells vary."""
    from companion.llm.llamacpp import LlamaCppLLM

    # One thread: with the cores shared by other test workers, llama.cpp's threads spin at a barrier after every
    # layer while a sibling waits for a core, and a 20-token answer took 8 s (30 times its speed alone). The moves'
    # validity and variety, which this checks, do not depend on the thread count.
    llm = LlamaCppLLM(n_ctx=2048, threads=1)
    await llm.start()
    decider = ActionDecider(llm, attempts=2, timeout=30)
    cells = []
    for i in range(8):
        decision = await decider.decide("Tic-tac-toe", [PLACE], query=f"Your move {i}: pick a free cell.", state="board: empty")
        assert decision.first_try_valid and not decision.fallback, decision.problems
        cells.append(decision.data["cell"])
    await llm.close()
    assert len(set(cells)) >= 2  # not the same copied value every time


@pytest.mark.slow
async def test_tiny_local_model_chooses_valid_actions_first_try():
    """With the packaged SmolLM2 and constrained decoding, every decision is valid on the first try."""
    import torch

    from companion.llm.transformers import TransformersLLM

    # One torch thread, as the llama.cpp test above has one model thread: torch's threads wait for each other too,
    # and on cores shared with other test workers a decision took 26-32 s instead of 3.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        llm = TransformersLLM(cache_dir=Path(platformdirs.user_cache_dir("companion")), device="cpu")
        await llm.start()
        decider = ActionDecider(llm, attempts=2, max_tokens=40, timeout=30)
        for query in ("Your turn: pick a cell.", "Pick again."):
            decision = await decider.decide("Tic-tac-toe", [PLACE, PASS], query=query, state="board: empty")
            assert decision.name in ("place", "pass")
            assert decision.first_try_valid and not decision.fallback, decision.problems
            assert validation_error(decision.data, {"place": PLACE.schema, "pass": None}[decision.name]) is None
        await llm.close()
    finally:
        torch.set_num_threads(threads)
