from pathlib import Path

import platformdirs
import pytest

from companion.llm.transformers import convert_default_model


@pytest.fixture(scope="session")
def smollm_folder() -> Path:
    """The packaged SmolLM2, converted once into the user cache (reused across runs)."""
    return convert_default_model(Path(platformdirs.user_cache_dir("companion")))
