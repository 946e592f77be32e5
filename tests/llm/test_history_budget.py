from pathlib import Path

from companion.llm.sampling import (
    COLD_PREFILL_S,
    MIN_HISTORY_TOKENS,
    SpeedRecord,
    history_tokens_for,
    measured_prompt_speed,
)


def test_a_fast_gpu_gets_a_third_of_the_window():
    """A 32k-token model reading 8,000 tokens a second is given a third of its window as history."""
    assert history_tokens_for(8000.0, 32768, small=False, accelerated=True) == 32768 // 3


def test_a_big_model_on_a_slow_cpu_gets_what_it_reads_in_a_few_seconds():
    """A 7B model on two cores (about 300 prompt tokens a second) gets the history it reads in a few seconds, not a third of 32k."""
    got = history_tokens_for(300.0, 32768, small=False, accelerated=False)
    assert got == int(300 * COLD_PREFILL_S)
    assert history_tokens_for(20.0, 32768, small=False, accelerated=False) == MIN_HISTORY_TOKENS  # never a goldfish


def test_a_small_model_keeps_the_configured_default():
    """The embedded model keeps the configured history however fast it reads: more history gives it more to repeat."""
    assert history_tokens_for(5000.0, 8192, small=True, accelerated=False) is None


def test_without_a_measurement_only_a_gpu_gets_a_long_history():
    """Before any speed is known a GPU gets a third of its window and a CPU the default."""
    assert history_tokens_for(None, 8192, small=False, accelerated=True) == 8192 // 3
    assert history_tokens_for(None, 8192, small=False, accelerated=False) is None


def test_only_a_long_enough_prompt_counts_as_a_measurement():
    """A two-token prompt says nothing about speed; a 300-token one does."""
    assert measured_prompt_speed({"prompt_n": 2, "prompt_per_second": 90.0}) is None
    assert measured_prompt_speed({"prompt_n": 300, "prompt_per_second": 900.0}) == 900.0
    assert measured_prompt_speed({}) is None


def test_speeds_survive_a_new_process_and_a_torn_file(tmp_path: Path):
    """A measured speed is read back by the next process; a damaged file is treated as no figure, not an error."""
    SpeedRecord(tmp_path).put("model-a cpu", 812.34)
    assert SpeedRecord(tmp_path).get("model-a cpu") == 812.3
    (tmp_path / "speeds.json").write_text("{not json")
    assert SpeedRecord(tmp_path).get("model-a cpu") is None
    assert SpeedRecord(None).get("x") is None
