from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from companion.config import Settings, masking
from tests.fakes import FakeOpenAI


@pytest.fixture(autouse=True)
def _forget_secrets():
    """Each test starts with no registered secrets (the registry is process-wide, like a real run's)."""
    masking.clear()
    yield
    masking.clear()


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    server = await FakeOpenAI().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def settings_for(tmp_path: Path):
    """Settings pointing at a fake OpenAI server, with a private data folder."""

    def make(server: FakeOpenAI, **llm: object) -> Settings:
        return Settings.model_validate(
            {
                "companion": {"data_dir": str(tmp_path / "data")},
                "llm": {
                    "provider": "openai",
                    "retries": 1,
                    "first_token_timeout": 5,
                    "openai": {"base_url": server.base_url, "model": "test-model"},
                    **llm,
                },
                "web": {"port": 0},
                "memory": {"enabled": False},  # memory has its own tests; here it would add a model load
            }
        )

    return make


from tests.voice.conftest import piper_voice, whisper  # noqa: E402,F401 - session-wide real models for every test folder
