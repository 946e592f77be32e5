import logging

from companion.app import default_model_notice, setup_logging
from companion.config import Settings


def test_secrets_are_masked_in_console_and_log_file(tmp_path, monkeypatch, capsys):
    """An API key that ends up in a log message is written as *** everywhere."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    settings = Settings.model_validate({"companion": {"data_dir": str(tmp_path)}})
    log_file = setup_logging(settings)
    try:
        logging.getLogger("companion.test").warning("calling with key %s", "sk-very-secret-123")
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = log_file.read_text()
        assert "calling with key ***" in text
        assert "sk-very-secret-123" not in text
        assert "sk-very-secret-123" not in capsys.readouterr().err
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_companion", False):
                logging.getLogger().removeHandler(handler)


def test_tiny_default_model_is_announced():
    """The embedded default warns that it is tiny and says how to use a real model; others do not."""
    notice = default_model_notice(Settings())
    assert notice and "tiny" in notice and "companion init llm" in notice
    assert default_model_notice(Settings.model_validate({"llm": {"provider": "openai"}})) is None


async def test_start_up_points_to_a_running_ollama(fake_openai, monkeypatch):
    """On the embedded model, a running Ollama with a chat model is named with how to switch; otherwise nothing."""
    from companion.app import local_server_hint

    fake_openai.models = ["nomic-embed-text", "llama3.1:8b"]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{fake_openai.port}")
    hint = await local_server_hint(Settings())
    assert hint and "llama3.1:8b" in hint and "companion init llm" in hint
    assert await local_server_hint(Settings.model_validate({"llm": {"provider": "openai"}})) is None
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    assert await local_server_hint(Settings()) is None or "LM Studio" in await local_server_hint(Settings())
