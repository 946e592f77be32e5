"""NumPy's BLAS threads beside the model."""

from threadpoolctl import threadpool_info

from companion.app import build_companion
from companion.config import Settings


async def test_a_started_companion_keeps_numpys_blas_to_one_thread(tmp_path, fake_openai):
    """Once she runs, NumPy's BLAS (recall's encoder) has one thread: no idle worker spins on the cores the model reads with."""
    settings = Settings.model_validate({
        "companion": {"data_dir": str(tmp_path / "d")},
        "llm": {"provider": "openai", "openai": {"base_url": fake_openai.base_url, "model": "test-model"}},
    })
    comp = build_companion(settings)
    await comp.start()
    try:
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
    finally:
        await comp.close()
