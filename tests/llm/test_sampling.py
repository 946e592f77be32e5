"""Sampler presets against loops, and how they reach llama.cpp and OpenAI-compatible servers."""

from companion.config import Settings
from companion.llm.base import GenerationOptions
from companion.llm.openai import OpenAILLM, from_settings, is_local_url
from companion.llm.sampling import LARGE, SMALL, sampling_for


def test_a_small_model_gets_the_strong_preset_and_a_large_one_the_mild():
    """The embedded-size model is pushed harder away from repeats than a model of several GB."""
    assert sampling_for(100_000_000, {}) == SMALL
    assert sampling_for(5_000_000_000, {}) == LARGE
    assert SMALL.dry_multiplier > 0 and SMALL.repeat_penalty > LARGE.repeat_penalty
    assert sampling_for(None, {}) == LARGE  # a server's model: size unknown


def test_user_values_override_the_preset():
    """A value set in [llm.sampling] wins; the others keep the preset's."""
    chosen = sampling_for(100_000_000, {"min_p": 0.2, "dry_multiplier": None})
    assert chosen.min_p == 0.2 and chosen.dry_multiplier == SMALL.dry_multiplier


def test_hosted_apis_get_only_the_openai_fields():
    """A hosted API that refuses unknown fields is sent presence/frequency penalties only; a local server gets llama.cpp's too."""
    assert is_local_url("http://127.0.0.1:11434/v1") and is_local_url("http://localhost:8000/v1")
    assert is_local_url("http://192.168.1.20:8080/v1") and not is_local_url("https://api.openai.com/v1")
    hosted = Settings.model_validate({"llm": {"provider": "openai", "openai": {"base_url": "https://openrouter.ai/api/v1"}, "sampling": {"presence_penalty": 0.4}}})
    llm = from_settings(hosted)
    assert llm.sampling == {"presence_penalty": 0.4}
    local = from_settings(Settings.model_validate({"llm": {"provider": "openai"}}))
    assert local.sampling["min_p"] == LARGE.min_p and "dry_multiplier" in local.sampling


def test_json_requests_are_sent_without_penalties():
    """A structured (JSON) request is not bent by repeat penalties: its keys repeat by design."""
    llm = OpenAILLM(base_url="http://127.0.0.1:1/v1", model="m")
    llm.sampling = {"presence_penalty": 0.5}
    free = llm._payload([{"role": "user", "content": "hi"}], GenerationOptions())
    constrained = llm._payload([{"role": "user", "content": "hi"}], GenerationOptions(response_format={"type": "json_object"}))
    assert free["presence_penalty"] == 0.5 and "presence_penalty" not in constrained


def test_the_whole_context_is_spelled_out_for_the_embedded_server():
    """DRY over "the whole context" is sent as the context length (0 would turn DRY off, -1 is refused)."""
    sent = SMALL.llamacpp(4096)
    assert sent["dry_penalty_last_n"] == 4096 and sent["dry_multiplier"] > 0
