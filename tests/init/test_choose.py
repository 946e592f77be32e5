from companion.init.choose import ModelInfo, is_chat_model, param_billions, pick_model

GB = 1_000_000_000


def test_largest_chat_model_that_fits_is_picked():
    """Embedding models are skipped; the biggest model within 60% of memory wins; nothing fits -> the smallest."""
    models = [ModelInfo("nomic-embed-text", 300_000_000), ModelInfo("llama3.2:3b", 2 * GB), ModelInfo("qwen2.5:7b", int(4.7 * GB)),
              ModelInfo("llama3.1:70b", 40 * GB)]
    assert pick_model(models, 16 * 2**30).name == "qwen2.5:7b"
    assert pick_model(models, 4 * 2**30).name == "llama3.2:3b"
    assert pick_model(models, 1 * 2**30).name == "llama3.2:3b"  # nothing fits: the smallest chat model
    assert pick_model([ModelInfo("bge-m3")], 16 * 2**30) is None


def test_sizes_from_names_when_the_server_does_not_say():
    """Without sizes (LM Studio, vLLM), the parameter count in the name decides."""
    models = [ModelInfo("mistral-7b-instruct"), ModelInfo("phi-3-mini-3.8b"), ModelInfo("qwen2.5-32b-instruct")]
    assert param_billions(models[0]) == 7.0 and param_billions(ModelInfo("x", parameters="8.0B")) == 8.0
    assert pick_model(models, 24 * 2**30).name == "mistral-7b-instruct"
    assert not is_chat_model("text-embedding-3-small") and is_chat_model("llama3.1:8b")
